"""Responses to contacts: tracking, call outcomes, replies, survey scores, bounces."""
