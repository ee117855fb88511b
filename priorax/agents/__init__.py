"""One sub-package per method: config, networks, learning, acting, builder."""
