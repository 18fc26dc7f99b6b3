cpdef tuple target(bytes method, bytes url)
