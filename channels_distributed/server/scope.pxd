# For the compiled build (setup.py): the functions the connection calls at C level, with typed
# arguments (their reads and copies of dicts and bytes are C calls).
from channels_distributed.server cimport head

cpdef dict template(local, client, str scheme, str root_path)
cpdef dict http_scope(dict shared, str version, bytes method, bytes url, list headers,
                      dict state)
