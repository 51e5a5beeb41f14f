"""Video and image-sequence I/O: the only package that imports PyAV.

Modules: :mod:`.types` (VideoInfo, Frame, suffixes), :mod:`.images` (the one still-image reader,
PNG writing, frame folders), :mod:`.reader` (decoding), :mod:`.writer` (encoding).

Reading: :func:`open_video` returns a :class:`VideoReader` (a video file, decoded with PyAV) or
an :class:`ImageSequenceReader` (a folder of PNG/JPG/... frames). Both stream :class:`Frame`
objects holding upright RGB pictures with their presentation timestamps, and both can decode again
from the start, or from any frame (``frames(start=k)``: a video seeks to the keyframe before frame
``k`` and decodes from there; the frames equal those of a full decode).

Writing: :class:`VideoWriter` encodes frames at their source timestamps (variable frame rate is
kept), stream-copies the source's audio, subtitles, chapters and metadata, and writes to a
temporary file beside the target that is renamed only when :meth:`VideoWriter.close` succeeds. A
folder (or a name without a video extension) is written as a lossless PNG sequence instead.

Choices made here (documented once):

* Rotation: decoded pictures are turned upright (display matrix applied), the pipeline works on
  upright frames, and the output is written upright with **no** rotation tag. A player therefore
  shows the output exactly as it showed the input.
* Bit depth: a source of more than 8 bits a sample is read at 16 bits beside its 8-bit picture
  (``Frame.deep``) and written at 10 bits where ``encode.pix_fmt`` is ``auto``; pictures drawn in
  8 bits (previews, review videos: :func:`for_review`) are written at 8.
* Odd sizes: H.264/HEVC cannot represent an odd width or height in 4:2:0 (their crop unit is 2 luma
  pixels), so for odd sizes a chroma-subsampled ``pix_fmt`` is replaced by ``yuv444p`` (logged).
  The decoded output then has exactly the input's width and height; the cost is that some hardware
  players lack 4:4:4 support. Padding would have changed the displayed size.
"""

from lama_video.video.images import (
    is_image_sequence_path,
    list_image_files,
    read_image,
    write_png,
)
from lama_video.video.reader import (
    ImageSequenceReader,
    VideoReader,
    count_frames,
    describe,
    frame_at,
    open_video,
)
from lama_video.video.types import (
    DEFAULT_SEQUENCE_RATE,
    IMAGE_EXTENSIONS,
    OUTPUT_FOR_READ_ONLY,
    READ_ONLY_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ColorInfo,
    Frame,
    VideoInfo,
)
from lama_video.video.writer import VideoWriter, for_review

__all__ = [
    "DEFAULT_SEQUENCE_RATE",
    "IMAGE_EXTENSIONS",
    "OUTPUT_FOR_READ_ONLY",
    "READ_ONLY_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ColorInfo",
    "Frame",
    "ImageSequenceReader",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "count_frames",
    "describe",
    "for_review",
    "frame_at",
    "is_image_sequence_path",
    "list_image_files",
    "open_video",
    "read_image",
    "write_png",
]
