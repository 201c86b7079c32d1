"""Job handlers: what the worker runs for each job, as handlers/ is for requests.
Each turns a job into domain decisions and db/ or clients/ calls."""
