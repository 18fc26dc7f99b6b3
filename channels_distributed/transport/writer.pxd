cdef class Script:
    cdef public object source, sha

cdef class BatchWriter:
    cdef public object shard, _loop, _describe, _pending, _acked, _scheduled
    cdef public object _connecting, _link, _inflight, _settled, _watchdog, _idle

