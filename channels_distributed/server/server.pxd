# For the compiled build (setup.py): the classes of the .py beside this file as extension
# types with typed attributes (C struct fields), and the methods called from C.
cdef class Server:
    cdef public object app, config, loop, log, on_request, hooks, connections, _listeners
    cdef public object _tick, _closed_waiter
    cdef public bint access_log, draining, _accepting
    cdef public dict state
    cdef public Py_ssize_t pending, requests
    cdef public long long _date_second
    cdef public double now
    cdef public bytes date_line, server_line
    cpdef request_done(self, cycle)
