from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from jobs import sweeps  # noqa: F401  (connects its runner.job_finished receiver)
