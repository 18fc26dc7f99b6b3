cdef class Reader:
    cdef public object shard, key, _batch, _capacity_of, _clock_ms, _buffers
    cdef public object _waiters, _waiting, _task, _closed, _warned, _last_demand
    cdef public object _loop

