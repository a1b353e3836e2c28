"""Tracking backends, one module each, registered in :data:`mtlkit.tracking.TRACKERS`.

A backend module imports its package only when a tracker is created, so listing the
backends costs nothing and a missing package is a clear error naming its pip extra.
"""
