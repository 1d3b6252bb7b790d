"""Contact between points (FEM surface nodes, MPM particles) and the surface triangles of
the FEM bodies (pads, soft bodies), found through a uniform spatial hash over the triangles
that is rebuilt every substep: the cost grows with points + triangles, never with their
product.

A point touches a triangle of another body when its projection falls inside the triangle
(faded out smoothly across the edges, so neighbours share a point on their edge) and its
signed distance to the triangle's plane (outward normal) is below its contact
radius (particles: a quarter of the grid cell; FEM nodes: 0), down to ``depth`` inside.
Near a convex edge a point inside the body lies behind both faces' planes; only the face
whose plane is nearer holds it (the other lets go over EDGE_HANDOFF), as the signed
distance of a convex body is the largest of its faces' plane distances.
The normal pressure is ``stiffness * ramp(radius - distance)`` (quadratic over the first
``smoothing`` metres, then linear) times the point's area, with Hunt-Crossley damping and
smoothed Coulomb friction on the velocity relative to the triangle; the triangle's nodes
take the opposite force by barycentric weights, so momentum is exchanged exactly.

Points farther than two hash cells from the box around every other body's triangles'
centroids cannot share a neighbouring cell with any of them, so the search skips them
without hashing (most particles of a large body: away from the pads, or between two pads
that grasp it). Within the neighbouring cells, a triangle is tested only if the point lies
within a ball around its centroid that holds every point the test below can accept (its
footprint widened by the fading edge and the slacks, scaled about the centroid, and the
depth band): a few flops instead of gathering three nodes and projecting (a dome pad's
cells hold a hundred triangles or more around each particle near it).

The candidates of a search stay valid while no point and no triangle node has moved more
than a skin (``SKIN`` hash cells) from where it was. A pair is active only while the point
lies over the triangle's footprint (the triangle widened by its fading edge) within its
depth below to its radius above. Such moves shift the point and the plane by at most about
two skins and tilt the plane by at most about two skins over the triangle's smallest height,
so the search keeps every pair within the matching slacks of both conditions (to first
order in the tilt; triangles no thinner than a few skins). Each substep checks the moves
(one pass over the positions) and searches again only past the skin. A restart from stored
state (``invalidate``) searches afresh, so a backward's recomputation chooses as the forward
did.

The pair search is not differentiated (it only chooses candidates, with slack); the force
kernel is, by Taichi's reverse mode. Points, forces and pairs are kept per row of the
owner's ring of substep states (sim.mpm.chunks): ``slots`` rows.

Given the masses and the substep (``point_mass``, ``node_mass``, ``dt``), the normal
damping coefficient ``kn * area * ramp * kd`` of a pair and its friction's
``mu * fn / |slip|`` are capped at ``DAMPING_CAP`` times the pair's effective mass over the
substep: explicit damping with ``c dt / m > 2`` flips and grows the relative velocity every
substep. Hunt-Crossley's grows with the depth, so a pad pressed a fraction of a millimetre
into a soft block blew up within a few substeps; regularised friction is that stiff at any
depth when sticking, and chattered (forces flipping sign every substep). Capped, a sticking
contact loses a fixed share of its slip per substep instead.
"""

import numpy as np
import taichi as ti

from sim import geometry
from sim.runtime import ensure_runtime, serial_loops

EDGE = 0.05  # barycentric width over which a triangle's footprint fades out
# c dt / m_eff per pair. A point at the shared vertex of a fan of six triangles meets each at
# half weight (three pairs' worth) and the reverse pairs add about as much: their sum stays
# below 1, where explicit Euler no longer overshoots (0.5 still chattered at such vertices).
DAMPING_CAP = 0.2
# A face lets go of a point by a convex edge as the neighbouring face's plane gets nearer to it
# than its own, by up to this share of the edge's length (on the bisector both faces hold it)
EDGE_HANDOFF = 0.25
SKIN = 0.02  # hash cells a point or triangle node may move before the pairs are searched again


@ti.data_oriented
class SurfaceContact:
    def __init__(self, triangles, tri_body, point_body, point_area, point_radius, slots: int, real,
                 cell: float, depth: float, smoothing: float, slip_velocity: float, max_pairs: int | None = None,
                 point_mass=None, node_mass=None, dt: float | None = None):
        self.n_tris, self.n_points, self.slots = len(triangles), len(point_body), int(slots)
        self.serial_loops = serial_loops(ensure_runtime(), self.n_points)
        self.skin = SKIN * float(cell)
        self.cell, self.depth = float(cell) + 2.2 * self.skin, float(depth)  # neighbouring cells still hold the reach
        self.smoothing, self.eps2 = float(smoothing), float(slip_velocity) ** 2
        self.table = 1 << max(int(np.ceil(np.log2(max(4 * self.n_tris, 64)))), 6)
        self.max_pairs = int(max_pairs or max(8 * self.n_points, 1024))
        T, P, S = max(self.n_tris, 1), max(self.n_points, 1), self.slots
        self.tri = ti.Vector.field(3, ti.i32, T)
        self.tri_nb = ti.Vector.field(3, ti.i32, T)  # the triangle across the edge opposite each corner (-1: none)
        self.tri_far = ti.Vector.field(3, ti.i32, T)  # and its corner off that edge
        self.tri_body = ti.field(ti.i32, T)
        self.tri_cell = ti.Vector.field(3, ti.i32, T)
        self.tri_slot = ti.field(ti.i32, T)
        self.tri_centre = ti.Vector.field(3, real, T)
        self.tri_ball = ti.field(real, T)  # squared radius about the centre holding every point the search may accept
        self.point_body = ti.field(ti.i32, P)
        self.area = ti.field(real, P)
        self.radius = ti.field(real, P)
        self.max_radius = float(np.max(point_radius)) if len(point_radius) else 0.0
        self.px = ti.Vector.field(3, real, (S, P), needs_grad=True)
        self.pv = ti.Vector.field(3, real, (S, P), needs_grad=True)
        self.pf = ti.Vector.field(3, real, (S, P), needs_grad=True)
        self.n_tri_bodies = int(np.max(tri_body)) + 1 if self.n_tris else 1
        self.box = ti.Vector.field(3, real, (self.n_tri_bodies, 2))  # corners of each body's triangles' centroids
        self.count = ti.field(ti.i32, self.table)
        self.start = ti.field(ti.i32, self.table + 1)
        self.sorted = ti.field(ti.i32, T)
        self.pair_point = ti.field(ti.i32, (S, self.max_pairs))
        self.pair_tri = ti.field(ti.i32, (S, self.max_pairs))
        self.n_pairs = ti.field(ti.i32, S)
        n_nodes = int(np.max(triangles)) + 1 if self.n_tris else 1
        self.px_ref = ti.Vector.field(3, real, P)  # the positions at the last search
        self.x_ref = ti.Vector.field(3, real, n_nodes)
        self.moved = ti.field(real, ())  # the farthest move since, squared
        self.pairs_row = None  # the row holding the current candidates (None: search)
        self.limit_damping = point_mass is not None and node_mass is not None and dt is not None
        self.dt = float(dt or 0.0)
        self.inv_point_mass = ti.field(real, P)
        self.inv_node_mass = ti.field(real, max(len(node_mass), 1) if self.limit_damping else 1)
        if self.limit_damping and self.n_points:
            self.inv_point_mass.from_numpy(1.0 / np.asarray(point_mass, np.float64))
            self.inv_node_mass.from_numpy(1.0 / np.asarray(node_mass, np.float64))
        if self.n_tris:
            self.tri.from_numpy(np.asarray(triangles, np.int32))
            nb, far = geometry.edge_neighbours(triangles)
            self.tri_nb.from_numpy(nb.astype(np.int32))
            self.tri_far.from_numpy(far.astype(np.int32))
            self.tri_body.from_numpy(np.asarray(tri_body, np.int32))
        if self.n_points:
            self.point_body.from_numpy(np.asarray(point_body, np.int32))
            self.area.from_numpy(np.asarray(point_area, np.float64))
            self.radius.from_numpy(np.asarray(point_radius, np.float64))

    # --- the hash and the candidate pairs (not differentiated) ------------------------
    @ti.func
    def _bucket(self, c):
        h = (c[0] * 73856093) ^ (c[1] * 19349663) ^ (c[2] * 83492791)
        return h & (self.table - 1)

    @ti.kernel
    def _reset(self):
        ti.loop_config(serialize=self.serial_loops)
        for b in range(self.n_tri_bodies):
            self.box[b, 0] = ti.Vector([1e30, 1e30, 1e30])
            self.box[b, 1] = ti.Vector([-1e30, -1e30, -1e30])
        ti.loop_config(serialize=self.serial_loops)
        for b in range(self.table):  # (start is rewritten whole by _prefix)
            self.count[b] = 0

    @ti.kernel
    def _bin(self, s: ti.i32, x: ti.template()):
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.n_tris):
            ids = self.tri[t]
            c = (x[s, ids[0]] + x[s, ids[1]] + x[s, ids[2]]) / 3.0
            self.tri_centre[t] = c
            self.tri_ball[t] = self._ball(s, x, t, c) ** 2
            ti.atomic_min(self.box[self.tri_body[t], 0], c)
            ti.atomic_max(self.box[self.tri_body[t], 1], c)
            cell = ti.floor(c / self.cell, ti.i32)
            self.tri_cell[t] = cell
            self.tri_slot[t] = ti.atomic_add(self.count[self._bucket(cell)], 1)

    @ti.kernel
    def _prefix(self, s: ti.i32):
        self.n_pairs[s] = 0
        ti.loop_config(serialize=True)
        for b in range(self.table):
            self.start[b + 1] = self.start[b] + self.count[b]

    @ti.kernel
    def _scatter(self):
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.n_tris):
            self.sorted[self.start[self._bucket(self.tri_cell[t])] + self.tri_slot[t]] = t

    @ti.func
    def _slacks(self, s, x, t, area2, r):
        """(smallest height, in-plane slack, normal slack) of triangle t (twice its area:
        area2) for a point of radius r: moves within the skin tilt the plane by at most 2.2 skins over
        the smallest height, so the in-plane distance past the widened edge and the normal
        distance may change by these slacks (the force kernel decides exactly)."""
        longest = self._longest_edge(s, x, t)
        h = area2 / longest
        tilt = 2.2 * self.skin / h
        in_slack = 2.2 * self.skin + (self.depth + r) * tilt
        return h, in_slack, 2.2 * self.skin + (longest + in_slack) * tilt

    @ti.func
    def _ball(self, s, x, t, c):
        """A radius about centroid c holding every point _find may accept for triangle t: its
        footprint widened to barycentric coordinates above -(EDGE + in-plane slack / h) is
        the triangle scaled about the centroid by 1 + 3 (EDGE + slack / h), and the point
        lies at most max(depth, radius) + normal slack off its plane (1e-4 more: rounding)."""
        ids = self.tri[t]
        a, b, cc = x[s, ids[0]], x[s, ids[1]], x[s, ids[2]]
        rho = ti.sqrt(ti.max((a - c).norm_sqr(), (b - c).norm_sqr(), (cc - c).norm_sqr()))
        h, in_slack, d_slack = self._slacks(s, x, t, (b - a).cross(cc - a).norm(), self.max_radius)
        return (rho * (1.0 + 3.0 * (EDGE + in_slack / h)) + ti.max(self.depth, self.max_radius) + d_slack) * (1.0 + 1e-4)

    @ti.kernel
    def _find(self, s: ti.i32, x: ti.template()):
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n_points):
            xp = self.px[s, p]
            self.px_ref[p] = xp
            reach = 2.0 * self.cell
            near = False
            for b in range(self.n_tri_bodies):
                if b != self.point_body[p] and (xp >= self.box[b, 0] - reach).all() and (xp <= self.box[b, 1] + reach).all():
                    near = True
            if not near:
                continue
            home = ti.floor(xp / self.cell, ti.i32)
            for nb in range(27):  # a runtime loop: unrolled, this kernel took a minute to compile
                cell = home + ti.Vector([nb // 9 - 1, nb // 3 % 3 - 1, nb % 3 - 1])
                b = self._bucket(cell)
                for j in range(self.start[b], self.start[b + 1]):
                    t = self.sorted[j]
                    if (self.tri_body[t] != self.point_body[p] and (self.tri_cell[t] == cell).all()
                            and (xp - self.tri_centre[t]).norm_sqr() <= self.tri_ball[t]):
                        d, w, _, area2 = self._plane(s, x, t, xp)
                        if d > -self.depth - self.cell and d < self.radius[p] + self.cell:
                            h, in_slack, d_slack = self._slacks(s, x, t, area2, self.radius[p])
                            past_edge = -(w.min() + EDGE) * h
                            if past_edge < in_slack and d > -self.depth - d_slack and d < self.radius[p] + d_slack:
                                k = ti.atomic_add(self.n_pairs[s], 1)
                                if k < self.max_pairs:
                                    self.pair_point[s, k] = p
                                    self.pair_tri[s, k] = t

    @ti.kernel
    def _measure_moves(self, s: ti.i32, x: ti.template()) -> ti.f64:
        """The farthest move of a point or node since the last search, squared (returned:
        reading a field from Python costs a kernel launch of its own)."""
        self.moved[None] = 0.0
        ti.loop_config(serialize=True)  # a few thousand positions: cheaper than contended atomics
        for p in range(self.n_points):
            ti.atomic_max(self.moved[None], (self.px[s, p] - self.px_ref[p]).norm_sqr())
        ti.loop_config(serialize=True)
        for i in range(self.x_ref.shape[0]):
            ti.atomic_max(self.moved[None], (x[s, i] - self.x_ref[i]).norm_sqr())
        return self.moved[None]

    @ti.kernel
    def _keep_nodes(self, s: ti.i32, x: ti.template()):
        ti.loop_config(serialize=self.serial_loops)
        for i in range(self.x_ref.shape[0]):
            self.x_ref[i] = x[s, i]

    @ti.kernel
    def _copy_pairs(self, src: ti.i32, dst: ti.i32):
        self.n_pairs[dst] = self.n_pairs[src]
        ti.loop_config(serialize=self.serial_loops)
        for k in range(self.n_pairs[src]):
            self.pair_point[dst, k] = self.pair_point[src, k]
            self.pair_tri[dst, k] = self.pair_tri[src, k]

    def invalidate(self) -> None:
        """The next ``find_pairs`` searches afresh (the state was replaced)."""
        self.pairs_row = None

    def find_pairs(self, s: int, x) -> int | None:
        """Candidate (point, triangle) pairs of row s from the points ``px[s]`` and FEM
        node positions ``x[s]``: the last search's while every move since is within the
        skin, else a new search. Returns their number after a search, else None (reading
        it costs a launch; it is in ``n_pairs[s]``)."""
        if not (self.n_tris and self.n_points):
            self.n_pairs[s] = 0
            return 0
        if self.pairs_row is not None and self._measure_moves(s, x) <= self.skin**2:
            if self.pairs_row != s:
                self._copy_pairs(self.pairs_row, s)
                self.pairs_row = s
            return None
        self._keep_nodes(s, x)
        self.pairs_row = s
        self._reset()
        self._bin(s, x)
        self._prefix(s)
        self._scatter()
        self._find(s, x)
        n = int(self.n_pairs[s])
        if n > self.max_pairs:
            raise RuntimeError(f"{n} contact pairs exceed the buffer of {self.max_pairs}; raise max_pairs")
        return n

    @ti.func
    def _longest_edge(self, s, x, t):
        ids = self.tri[t]
        a, b, c = x[s, ids[0]], x[s, ids[1]], x[s, ids[2]]
        return ti.sqrt(ti.max((b - a).norm_sqr(), (c - b).norm_sqr(), (a - c).norm_sqr()))

    # --- forces (differentiated) -------------------------------------------------------
    @ti.func
    def _plane(self, s, x, t, xp):
        """Signed distance of xp to triangle t's plane, its barycentric projection, normal,
        and twice the triangle's area."""
        ids = self.tri[t]
        a, b, c = x[s, ids[0]], x[s, ids[1]], x[s, ids[2]]
        nrm = (b - a).cross(c - a)
        area2 = nrm.norm()
        n = nrm / area2
        d = (xp - a).dot(n)
        q = xp - d * n
        wb = (q - a).cross(c - a).dot(n) / area2
        wc = (b - a).cross(q - a).dot(n) / area2
        return d, ti.Vector([1.0 - wb - wc, wb, wc]), n, area2

    @ti.func
    def _nearest_face_share(self, s, x, t, xp, d, n):
        """1 where triangle t's plane is the body's nearest face for point xp, fading to 0
        where, across a convex edge, the neighbour's plane is nearer by EDGE_HANDOFF of the
        edge's length: inside a convex body the signed distance is the largest of its faces'
        plane distances, so a point pressed into one face near an edge is not also taken as
        deep behind the other face (in whose footprint a deformed edge may put it)."""
        share = 1.0
        ids = self.tri[t]
        for i in ti.static(range(3)):
            m, o = self.tri_nb[t][i], self.tri_far[t][i]
            if m >= 0 and (x[s, o] - x[s, ids[0]]).dot(n) < 0.0:  # convex edge
                d_nb, _, _, _ = self._plane(s, x, m, xp)
                handoff = EDGE_HANDOFF * (x[s, ids[(i + 1) % 3]] - x[s, ids[(i + 2) % 3]]).norm()
                u = ti.math.clamp((d - d_nb) / handoff + 1.0, 0.0, 1.0)
                share *= u * u * (3.0 - 2.0 * u)
        return share

    @ti.func
    def _damping_cap(self, p, ids, w):
        """The largest stable damping coefficient of a pair (N s/m): DAMPING_CAP times its
        effective mass (the point against the triangle's nodes at its footprint) over dt."""
        cap = 1e30
        if ti.static(self.limit_damping):
            inv_m = self.inv_point_mass[p]
            for i in ti.static(range(3)):
                inv_m += w[i] * w[i] * self.inv_node_mass[ids[i]]
            cap = DAMPING_CAP / (self.dt * inv_m)
        return cap

    @ti.kernel
    def forces(self, s: ti.i32, x: ti.template(), v: ti.template(), f: ti.template(),
               kn: ti.template(), kd: ti.template(), mu: ti.template()):
        """Adds pair forces to the points' ``pf[s]`` and the triangles' nodes' ``f[s]``."""
        ti.loop_config(serialize=self.serial_loops)
        for k in range(self.n_pairs[s]):
            p, t = self.pair_point[s, k], self.pair_tri[s, k]
            xp = self.px[s, p]
            d, w, n, _ = self._plane(s, x, t, xp)
            pen = self.radius[p] - d
            # the footprint's edge fades in over EDGE in barycentric units, so a point sliding
            # from one triangle onto its (not coplanar) neighbour feels a continuous force
            fade = ti.math.clamp((w.min() + EDGE) / (2.0 * EDGE), 0.0, 1.0)
            if fade > 0 and pen > 0 and d > -self.depth:
                ramp = pen - 0.5 * self.smoothing
                if pen < self.smoothing:
                    ramp = pen * pen / (2.0 * self.smoothing)
                ids = self.tri[t]
                vt_ = w[0] * v[s, ids[0]] + w[1] * v[s, ids[1]] + w[2] * v[s, ids[2]]
                vr = self.pv[s, p] - vt_
                vn = vr.dot(n)
                spring = kn[None] * self.area[p] * ramp
                slip = vr - vn * n
                cap = self._damping_cap(p, ids, w)
                fn = ti.max(spring - ti.min(spring * kd[None], cap) * vn, 0.0)
                ct = ti.min(mu[None] * fn / ti.sqrt(slip.dot(slip) + self.eps2), cap)  # regularised Coulomb
                share = self._nearest_face_share(s, x, t, xp, d, n)
                force = share * fade * fade * (3.0 - 2.0 * fade) * (fn * n - ct * slip)
                self.pf[s, p] += force
                for i in ti.static(range(3)):
                    f[s, ids[i]] -= w[i] * force

