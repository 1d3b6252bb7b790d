"""rclpy in its own context, spun by its own executor thread.

One executor thread unless a node's callbacks block (the lab-sim's action server waits in
its execute callback until the goal ends): rclpy's multi-threaded executor costs 2-10x the
CPU of the single-threaded one for the same callbacks, and at times spins a core while
dropping most incoming messages, which starved the client of feedback on a 2-core machine.

Nothing here touches the global rclpy context, so several runtimes (a client and the
lab-sim in tests, or a studio that reconnects) never share state. Callbacks run on the
executor's threads; callers hand results across with thread-safe primitives.
"""

from __future__ import annotations

import threading

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


class RosRuntime:
    def __init__(self, node_name: str, threads: int = 1) -> None:
        self.context = Context()
        rclpy.init(context=self.context)  # domain id and discovery range from the environment
        self.executor = (SingleThreadedExecutor(context=self.context) if threads == 1 else
                         MultiThreadedExecutor(num_threads=threads, context=self.context))
        self.node = Node(node_name, context=self.context)
        self.error: BaseException | None = None  # what stopped the executor, if anything did
        self._closing = False
        # Heartbeat of our own executor: silence from a peer only means something while we
        # are spinning ourselves (a starved process hears nothing from anyone).
        self.beats = 0
        self.node.create_timer(0.02, self._beat)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"ros2-{node_name}", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as e:  # entities destroyed under the executor while closing are a normal close
            if self.context.ok() and not self._closing:
                self.error = e
                raise

    def _beat(self) -> None:
        self.beats += 1

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def add_node(self, node: Node) -> None:
        self.executor.add_node(node)

    def now(self):
        return self.node.get_clock().now().to_msg()

    def close(self) -> None:
        # Stop spinning and let running callbacks finish before their entities go away; on a
        # loaded machine that can take a while, and the context goes down first if it does.
        self._closing = True
        nodes = list(self.executor.get_nodes())
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        if self._thread.is_alive():
            self.context.try_shutdown()
        for node in nodes:
            node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> RosRuntime:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
