"""The push-to-publish service: web (Flask blueprints), senders, tokens, jobs, fetch, worker, runs,
notify and the database."""
