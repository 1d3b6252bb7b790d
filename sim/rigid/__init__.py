"""Dynamic rigid bodies (free, or on a hinge) of the volumetric world: sim.rigid.spec, sim.rigid.system."""
