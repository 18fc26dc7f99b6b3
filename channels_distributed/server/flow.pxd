# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types with typed attributes (C struct fields), and the methods called from C.
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
