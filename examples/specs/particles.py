"""An elementwise physics kernel: particles in 2-D under gravity and quadratic
air drag, advanced by one semi-implicit Euler step per call.

    dv/dt = -g e_y - k |v| v        dx/dt = v

Every array is one value per particle, so the step is a single fused loop in
the C. examples/c/ calls it from a C program.

    python -m kgen build examples/specs/particles.py
"""
import kgen as kg
import kgen.tensor as T

g = 9.81        # m/s^2
k = 0.05        # drag per unit mass, 1/m

x, y = T.dvector("x"), T.dvector("y")
vx, vy = T.dvector("vx"), T.dvector("vy")
dt = T.dscalar("dt")

speed = T.sqrt(vx ** 2 + vy ** 2)
vx_next = vx - dt * k * speed * vx
vy_next = vy - dt * (g + k * speed * vy)
x_next = x + dt * vx_next
y_next = y + dt * vy_next

# new (x, y, vx, vy) of every particle
step = kg.kernel("step", [x, y, vx, vy, dt], [x_next, y_next, vx_next, vy_next])
# mechanical energy per unit mass of every particle
energy = kg.kernel("energy", [y, vx, vy], 0.5 * (vx ** 2 + vy ** 2) + g * y)
