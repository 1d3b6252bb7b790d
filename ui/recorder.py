"""Records the viewport playing the current run as an MP4 video (imageio-ffmpeg, H.264)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

VIDEO_FPS = 30


def frame_indices(times: np.ndarray, fps: int = VIDEO_FPS) -> list[int]:
    """The run's frames shown at each video frame, in real time (the last frame at or
    before each video instant)."""
    if len(times) == 0:
        return []
    instants = np.arange(times[0], times[-1] + 1e-12, 1.0 / fps)
    return [max(0, int(np.searchsorted(times, t, side="right")) - 1) for t in instants]


def record_run(window, path: Path, fps: int = VIDEO_FPS) -> int:
    """Play ``window.run`` through the viewport into ``path``; returns the frames written."""
    import imageio_ffmpeg

    run, viewport = window.run, window.viewport
    indices = frame_indices(run.times, fps)
    first = viewport.screenshot()
    height, width = (first.shape[0] // 2) * 2, (first.shape[1] // 2) * 2  # H.264 needs even sizes
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=fps, macro_block_size=2)
    writer.send(None)  # start ffmpeg
    try:
        for index in indices:
            viewport.show_frame(run[index])
            writer.send(np.ascontiguousarray(viewport.screenshot()[:height, :width]))
    finally:
        writer.close()
        viewport.show_frame(run[window.timeline.index])
    return len(indices)
