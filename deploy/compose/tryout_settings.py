"""Settings of the Compose try-out: the demo project that ships in the package
(``channels_distributed.demo``), with the edge answering its own health probes."""

from channels_distributed.demo.settings import *  # noqa: F403
from channels_distributed.demo.settings import CHANNELS_DISTRIBUTED as DEMO

# The edge answers these paths itself, never routing them to a worker: live while it runs,
# ready while Redis answers (compose.yaml's healthcheck asks for it).
CHANNELS_DISTRIBUTED = {**DEMO, "LIVE_PATH": "/-/live", "READY_PATH": "/-/ready"}
