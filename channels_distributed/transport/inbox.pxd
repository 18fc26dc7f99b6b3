# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class Reader:
    cdef public object shard, key, _batch, _capacity_of, _clock_ms, _buffers
    cdef public object _waiters, _waiting, _task, _closed, _warned, _last_demand
    cdef public object _loop, _full, _next_sweep, relocate
