# For the compiled build (setup.py): the class of the .py beside this file as an extension type
# with typed attributes (C struct fields), the methods of a message's path called from C, and the
# frame helpers with C-typed offsets. websocket.WebSocketSession, a Python class, extends it.
cimport cython

from channels_distributed.server.base cimport Connection
from channels_distributed.server.context cimport ServerContext
from channels_distributed.server.flow cimport FlowControl

@cython.locals(left=Py_ssize_t, second=int, size=Py_ssize_t)
cpdef Py_ssize_t frame_end(bytes data, Py_ssize_t pos) except? -2

# The headers of short frames, a C global (read by server_frame() only).
cdef list _HEADS

@cython.locals(out=bytearray, i=Py_ssize_t)
cpdef bytes unmask(bytes data, Py_ssize_t start, Py_ssize_t end)
@cython.locals(length=Py_ssize_t)
cpdef bytes server_frame(int opcode, payload)

cdef class Framing:
    cdef public Connection conn
    cdef public ServerContext context
    cdef public object transport, loop, waiter, proto, extensions, events
    cdef public object fragment_opcode, gone
    cdef public FlowControl flow
    cdef public bytearray buffer
    cdef public list fragments
    cdef public bint opened, fast
    cdef public int state
    cdef public Py_ssize_t max_size, slow_left, wanted
    cdef public double last_seen, ping_sent, close_deadline
    cpdef protocol(self)
    cpdef bint is_open(self) except -1
    cpdef data_received(self, data)
    @cython.locals(pos=Py_ssize_t, total=Py_ssize_t, end=Py_ssize_t, take=Py_ssize_t,
                   delivered=bint)
    cpdef frames_in(self, bytes data)
    @cython.locals(first=int, second=int, size=Py_ssize_t)
    cpdef bint _fast_frame(self, bytes data, Py_ssize_t pos, Py_ssize_t end) except -1
    @cython.locals(start=Py_ssize_t, event=dict, payload=bytes)
    cpdef bint _deliver_fast(self, bytes data, Py_ssize_t pos, Py_ssize_t end) except -1
    cpdef _slow(self, bytes data)
    cpdef process(self)
    cpdef _deliver(self)
    cpdef wake(self)
    @cython.locals(fields=dict)
    cpdef bint sent_at_once(self, message) except -1
    @cython.locals(opcode=int)
    cpdef send_message(self, str text, data)
    cpdef flush(self)
