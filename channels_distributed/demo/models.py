from django.db import models


class Task(models.Model):  # type: ignore[misc]
    """A background task: queued by a view, done by the worker serving the ``tasks`` channel."""

    text = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="queued")
    result = models.CharField(max_length=200, blank=True)
    worker_pid = models.IntegerField(null=True)
    queued_by_pid = models.IntegerField()
