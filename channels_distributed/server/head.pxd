# For the compiled build (setup.py): lets http.py call target() at C level; target()'s cache is
# a C global (private: nothing outside this module reads it).
cpdef tuple target(bytes method, bytes url)

cdef dict _TARGETS
