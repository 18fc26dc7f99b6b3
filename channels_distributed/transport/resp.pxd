cdef class RespLink:
    cdef public object name, _reader, _waiters, _transport, _closed, _lost_reason
    cdef public object _loop

