# For the compiled build (setup.py): the class of the .py beside this file as an extension type
# with typed attributes (C struct fields), read by connections and request cycles at C level.
cdef class ServerContext:
    cdef public object app, config, loop, log, on_request, hooks
    cdef public bint access_log, draining
    cdef public dict state
    cdef public Py_ssize_t requests
    cdef public long long _date_second
    cdef public double now
    cdef public bytes date_line, server_line
    cpdef refresh(self, double now)
    cpdef request_started(self)
    cpdef request_done(self, cycle)
