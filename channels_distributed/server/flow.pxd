cdef class FlowControl:
    cdef public object transport
    cdef public int _read_pauses
    cdef public bint write_paused
    cdef public object _drain
    cpdef pause_reading(self, int reason)
    cpdef resume_reading(self, int reason)
    cpdef pause_writing(self)
    cpdef resume_writing(self)
    cpdef wake(self)
