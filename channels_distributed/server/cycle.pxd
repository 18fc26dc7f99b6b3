# For the compiled build (setup.py): the classes of the .py beside this file as extension types
# with typed attributes (C struct fields), and the methods called from C.
cimport cython

from channels_distributed.server cimport response
from channels_distributed.server.base cimport Connection
from channels_distributed.server.context cimport ServerContext

# The content-length lines, a C global (private: read by _choose_framing() only).
cdef dict _LENGTH_LINES

cdef class RequestCycle:
    cdef public Connection conn
    cdef public ServerContext context
    cdef public list body
    cdef public bint body_read, chunked, complete, disconnected, expect_continue
    cdef public bint keep_alive, message_done, no_body, started, told_gone, written
    cdef public Py_ssize_t buffered, discarded, sent
    cdef public object content_length, headers_out, length, task, waiter
    cdef public dict scope
    cdef public double start_time
    cdef public int status
    cpdef feed(self, bytes chunk)
    cpdef bint can_drain(self)
    cpdef message_complete(self)
    cpdef disconnect(self)
    cpdef _wake(self)
    @cython.locals(fields=dict)
    cpdef bint _send(self, message) except -1
    cpdef _body(self, body, bint more)
    cpdef _frame(self, body, bint more)
    @cython.locals(names=dict, values=set, parts=list)
    cpdef bytes _head(self, body, bint more)
    cpdef _choose_framing(self, body, bint more, list parts)
    cpdef _connection_header(self, list parts)
    cpdef _finish(self)
    cpdef _failed(self)
