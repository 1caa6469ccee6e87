raise ImportError("this plugin is broken on purpose: a missing dependency")
