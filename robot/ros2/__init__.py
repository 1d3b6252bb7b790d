"""The ROS 2 link (rclpy, imported lazily: only modules of this package import it).

``runtime`` gives rclpy its own context and executor thread; ``link`` is the client side
(FollowJointTrajectory, joint states, gripper, tactile images); ``lab_sim`` runs stand-in
controller, gripper and tactile nodes in a separate process; ``conversions`` holds the
pure message conversions.
"""
