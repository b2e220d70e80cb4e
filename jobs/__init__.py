"""The one background-job mechanism shared by synthetic, training and evaluation runs.

A run is a `jobs.Run` row (status, progress, log tail, artifacts, config). `jobs.services.start_run`
validates the config and queues `jobs.tasks.execute_run` through the Tasks API; a worker
(`manage.py db_worker --queue-name default,gpu --no-reload`) executes it by calling the handler
registered for the run's `kind`.

How an app adds a kind (say `synthetic`), in `synthetic/runs.py`:

    from jobs.registry import register

    def validate(config: dict) -> dict:        # raise ValueError naming the bad field
        if not config.get("personas"):
            raise ValueError("config.personas: at least one persona is needed")
        return config                           # the cleaned config that is stored

    @register("synthetic", label="Synthetic ratings", validate=validate, queue="default")
    def run_synthetic(run, ctx):
        todo = pending_judgments(run)           # skip work already stored: runs are resumable
        for done, job in enumerate(todo, 1):
            ctx.check_cancelled()               # raises jobs.runner.Cancelled when asked to stop
            store(job)
            ctx.progress(done, len(todo))
        ctx.log("all judgments stored")

and import that module from the app's `AppConfig.ready()` so the worker sees the handler. Heavy
work (torch, CUDA) goes through `ctx.run_subprocess([...])`, which streams the child's output into
the run's log and terminates the child when the run is cancelled. The app links its own model to
the run with `run = models.OneToOneField("jobs.Run", on_delete=models.CASCADE)`.
"""
