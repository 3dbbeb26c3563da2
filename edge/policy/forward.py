"""The policy's forward pass, obs -> action, in C (the kernel's fz_mlp_act) or in its NumPy twin.

Both compute, bit for bit, the same thing (csrc/fedzo_forward.c says it in
full; docs/DECISIONS.md, "Parallel rollouts and the C forward", says why):

    x = clip(float32(obs - mean) * scale, -OBS_CLIP, OBS_CLIP)
    per layer: s = 8-lane sum of float32 products W[j, i] x[i] in a fixed
               order, + b[j]; x = float32(tanh64(s)) with fedzo's own tanh
    action = float64(x * half) + mid

The C version runs in about a microsecond and is what `MLPPolicy.act` uses
when the kernel is built (and FEDZO_KERNEL does not force NumPy). The NumPy
twin exists so that an agent without a compiler computes the same actions,
hence the same returns and votes; it is several times slower than the
BLAS-and-np.tanh forward fedzo used before, which could not be matched in C.
"""
import numpy as np

from fedzo.edge import kernel

LANES = 8
TANH_LARGE = 20.0
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
# exp's Taylor polynomial to r^9, highest power first (Horner); the same
# literals as csrc/fedzo_forward.c
EXP_SERIES = (2.7557319223985893e-06, 2.48015873015873e-05, 0.0001984126984126984, 0.001388888888888889,
              0.008333333333333333, 0.041666666666666664, 0.16666666666666666, 0.5, 1.0, 1.0)


def tanh64(x) -> np.ndarray:
    """fedzo's tanh (fz_tanh) of a float64 array, elementwise: the same operations in the same order."""
    x = np.asarray(x, np.float64)
    a = np.fmin(np.abs(x), TANH_LARGE)      # fmin: NaN becomes 20 here, and NaN again at the end
    y = a + a
    k = np.floor(y * LOG2E + 0.5)
    r = y - k * LN2
    p = np.full_like(x, EXP_SERIES[0])
    for c in EXP_SERIES[1:]:
        p *= r
        p += c
    t = np.ldexp(p, k.astype(np.int64))    # p * 2**k, exact
    t += 1.0
    np.divide(2.0, t, out=t)
    np.subtract(1.0, t, out=t)
    np.negative(t, out=t, where=x < 0.0)
    return np.where(np.isnan(x), x, t)


class NumpyForward:
    """The NumPy twin of fz_mlp_act, bound to one MLPPolicy's buffers."""

    def __init__(self, policy):
        self.policy = policy
        self._layers = []
        for weight, bias in zip(policy.weights, policy.biases):
            n_out, n_in = weight.shape
            blocks = -(-n_in // LANES)
            padded = np.zeros((n_out, blocks * LANES), np.float32)   # the tail stays +0: adds nothing
            self._layers.append((weight, bias, padded, padded[:, :n_in], blocks, np.empty((n_out, LANES), np.float32)))
        self._zero = np.zeros(LANES, np.float32)

    def act(self, obs) -> np.ndarray:
        """The action for `obs` (the policy's reused float64 buffer)."""
        p = self.policy
        diff = np.subtract(obs, p._mean64)
        x = diff.astype(np.float32)
        x = np.multiply(x, p.obs_scale)
        x = np.where(x > p._clip, p._clip, x)
        x = np.where(x < -p._clip, -p._clip, x)
        for weight, bias, padded, products, blocks, acc in self._layers:
            np.multiply(weight, x, out=products)
            np.add(self._zero, padded[:, :LANES], out=acc)
            for b in range(1, blocks):
                np.add(acc, padded[:, b * LANES:(b + 1) * LANES], out=acc)
            h = acc[:, :4] + acc[:, 4:]
            q = h[:, :2] + h[:, 2:]
            s = q[:, 0] + q[:, 1]
            s = s + bias
            x = tanh64(s.astype(np.float64)).astype(np.float32)
        if p._half is not None:
            x = x * p._half
        action = p._action
        action[:] = x
        if p._mid is not None:
            action += p._mid
        return action


class CForward:
    """fz_mlp_act bound to one MLPPolicy's buffers: one C call per action."""

    def __init__(self, policy, module):
        ffi, lib = module.ffi, module.lib
        self._ffi, self._call = ffi, lib.fz_mlp_act
        sizes = [policy.obs_dim, *policy.hidden, policy.act_dim]
        net = ffi.new("fz_mlp *")
        keep = [ffi.new("uint32_t[]", sizes), ffi.new("float[]", 2 * max(sizes))]
        net.n_layers, net.max_width, net.sizes, net.work = len(sizes) - 1, max(sizes), keep[0], keep[1]

        def pointer(ctype, array):
            if array is None:
                return ffi.NULL
            keep.append(array)
            return ffi.cast(ctype, ffi.from_buffer(array, require_writable=False))
        # theta, the normalisation and the action are changed in place only, so these stay valid
        net.theta = pointer("float *", policy.theta)
        net.obs_mean = pointer("double *", policy._mean64)
        net.obs_scale = pointer("float *", policy.obs_scale)
        net.obs_clip = float(policy._clip)
        net.act_half = pointer("float *", policy._half)
        net.act_mid = pointer("double *", policy._mid)
        self._action = policy._action
        self._action_ptr = pointer("double *", policy._action)
        self._net, self._keep = net, keep
        self._obs_dim, self._act_dim = policy.obs_dim, policy.act_dim
        self._last, self._last_ptr = None, None
        self._lib = lib
        self._fused = None               # (task, its observe_act)

    def act(self, obs) -> np.ndarray:
        """The action for `obs` (the policy's reused float64 buffer)."""
        if obs is not self._last:
            # A task hands over the same observation buffer every step: its address is taken once.
            array = np.ascontiguousarray(obs, np.float64)
            if array.shape != (self._obs_dim,):
                raise ValueError(f"expected an observation of shape ({self._obs_dim},), got {array.shape}")
            pointer = self._ffi.cast("double *", self._ffi.from_buffer(array, require_writable=False))
            if array is not obs:             # a converted copy: valid for this call only
                self._call(self._net, pointer, self._action_ptr)
                return self._action
            self._last, self._last_ptr = obs, pointer
        self._call(self._net, self._last_ptr, self._action_ptr)
        return self._action


    def observe_act_for(self, task):
        """For `task.run_fused`: a callable that writes the task's observation, this
        policy's action for it into the task's controls, and returns the action's sum of
        squares, in one C call (fz_mlp_observe_act); None if the task has no fused layout
        or other sizes."""
        if self._fused is not None and self._fused[0] is task:
            return self._fused[1]
        layout = getattr(task, "fused_layout", lambda: None)()
        if layout is None:
            return None
        qpos, qvel, clip, obs, ctrl = layout
        if obs.shape != (self._obs_dim,) or ctrl.shape != (self._act_dim,) or qpos.size + qvel.size != obs.size:
            return None
        ffi, call, net = self._ffi, self._lib.fz_mlp_observe_act, self._net
        pointers = [ffi.cast("double *", ffi.from_buffer(a, require_writable=False)) for a in (qpos, qvel, obs, ctrl)]
        self._keep.append((qpos, qvel, obs, ctrl, pointers))
        p_qpos, p_qvel, p_obs, p_ctrl = pointers
        n_pos, n_vel, action = qpos.size, qvel.size, self._action_ptr

        def observe_act():
            return call(net, p_qpos, n_pos, p_qvel, n_vel, clip, p_obs, action, p_ctrl)
        self._fused = (task, observe_act)
        return observe_act


def c_module():
    """The C kernel's module if the forward can run in C here, else None."""
    if kernel.backend() != "c":
        return None
    module = kernel.implementations().get("c")
    if module is None or not hasattr(module.lib, "fz_mlp_act") or not module.lib.fz_mlp_available():
        return None
    return module


def bind(policy, implementation=None):
    """The forward for `policy`: "c" when available (or asked for), else "numpy"."""
    if implementation not in (None, "c", "numpy"):
        raise ValueError(f"forward implementation must be 'c' or 'numpy', not {implementation!r}")
    module = c_module() if implementation != "numpy" else None
    if implementation == "c" and module is None:
        raise ValueError("the C forward is not available here (kernel not built, FEDZO_KERNEL=numpy, or "
                         "this platform's float arithmetic is not plain IEEE)")
    return CForward(policy, module) if module is not None else NumpyForward(policy)
