"""Serial devices (pyserial): a Modbus RTU parallel gripper and a framed force/tactile stream."""
