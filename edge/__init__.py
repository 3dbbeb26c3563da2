"""fedzo's edge side: everything an agent needs, and the core the coordinator shares.

The kernel (`edge.kernel`), the fixed-point parameter store (`edge.fixedpoint`),
the policy (`edge.policy`), the MuJoCo tasks (`edge.tasks`), preference sources,
the agent's round logic, and the wire protocol all live here, so that an edge
board installs one small package.
"""

__version__ = "0.1.0"
