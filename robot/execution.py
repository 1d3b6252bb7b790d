"""Moving the real robot: nothing moves unless the safety gate passes on the robot's
measured state and the user has armed the robot for this motion."""

from __future__ import annotations

from dataclasses import dataclass

from robot.safety import SafetyConfig, SafetyReport, check
from robot.trajectory import JointTrajectory
from robot.urdf import RobotModel


class NotArmed(RuntimeError):
    pass


class GateRefused(RuntimeError):
    def __init__(self, report: SafetyReport) -> None:
        super().__init__(report.text())
        self.report = report


@dataclass
class Arming:
    """The explicit arm step: armed for one motion, disarmed again once it is sent."""

    armed: bool = False

    def arm(self) -> None:
        self.armed = True

    def disarm(self) -> None:
        self.armed = False


def send_checked(link, model: RobotModel, traj: JointTrajectory, arming: Arming,
                 config: SafetyConfig = SafetyConfig(), state_timeout: float = 2.0, **execute_options):
    """Gate ``traj`` against the robot's measured state, then send it through ``link``
    (a RosLink) if the user armed the robot. Raises GateRefused (with the full report)
    or NotArmed without sending anything; returns the Execution and the report."""
    report = check(model, traj, link.joint_state(state_timeout), config)
    if not report.passed:
        raise GateRefused(report)
    if not arming.armed:
        raise NotArmed("the robot is not armed: the trajectory passed the safety gate but nothing was sent "
                       "(arm it to move)")
    arming.disarm()
    return link.execute(traj, **execute_options), report
