# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class Edge:
    cdef public object config, hub, presence, watch, _ids, _id_prefix
    cdef public object _queues, _timeout_ms, _queue_ttl_ms, _waiting, _requests, _giving_up
    cdef public object _sweeper
