"""Qt-free services the studio and the CLI drive: the simulation thread, runs of frames,
optimization runs, user files (recent scenes, crash recovery), deployment."""
