"""Real-network test labs (network namespaces); see netlab.py."""
