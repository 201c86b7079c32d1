"""Database access: the asyncpg pool and the SQL. Imports the domain, never the handlers."""
