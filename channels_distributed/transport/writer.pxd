# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class BatchWriter:
    cdef public object shard, _loop, _describe, _pending, _acked, _scheduled
    cdef public object _connecting, _link, _inflight, _settled, _watchdog, _idle, redirect
    cdef public object _mode, _held, _retrying, rings
