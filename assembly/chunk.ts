// chunk kernel — being written.
