"""``python -m lama_video``."""

from lama_video.cli import main

main()
