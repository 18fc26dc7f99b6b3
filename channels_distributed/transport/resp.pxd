# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types. Their attributes become C struct fields instead of instance-dict entries; typed as
# object, they keep Python's semantics.
cdef class RespLink:
    cdef public object name, _reader, _waiters, _transport, _closed, _lost_reason
    cdef public object _loop, on_push, on_moved
