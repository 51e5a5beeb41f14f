"""A local web page to paint the object on keyframes, check the tracking and preview the removal.

``lama-video ui INPUT`` starts :class:`UiServer` on 127.0.0.1; the page (``static/``: plain HTML,
JavaScript and CSS, no build step) talks to a small JSON API. See :mod:`lama_video.ui.session`
for the work folder and how frames are served, :mod:`lama_video.ui.server` for the API.
"""

from __future__ import annotations

from lama_video.ui.server import UiServer
from lama_video.ui.session import HttpError, JobStatus, Session

__all__ = ["HttpError", "JobStatus", "Session", "UiServer"]
