"""Everything a lane needs, resolved and staged on the host before the lane starts.

- :mod:`.tags`: which wheel tags a target platform accepts (pure);
- :mod:`.pip`: pip download / install for a target, and "no wheel" told apart from "pip failed";
- :mod:`.store`: :func:`~.store.publish_dir`, the one way a content-addressed directory is published;
- :mod:`.result`: what a staging produced (installed, missing wheels) and its on-disk marker;
- :mod:`.lock`: the lock (and the user's local wheels) staged as site-packages for a platform;
- :mod:`.suite`: the lane-side suite (and the user's check modules) staged for ``sys.path``.
"""
