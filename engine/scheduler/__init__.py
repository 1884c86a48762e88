"""``crm scheduler``: the scheduler process, its lock, and the jobs of every area it fires."""
