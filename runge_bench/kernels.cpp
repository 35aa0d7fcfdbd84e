// Fused elementwise kernels of the batched engine, for the CPU (float32 and float64).
//
// batched.py states the arithmetic and implements it with torch ops (`TorchKernels`, the
// specification); these loops compute the same thing in one pass over each layer's rows instead
// of one pass per op, so a stacked step costs its matrix products plus little else.
// tests/test_native.py holds every kernel to the torch one.
//
// Layout, per member m (all arrays contiguous, members back to back):
//   x, f, df: (N)           one member's points and targets
//   w1, b1:   (H)           the first layer (a scalar input: z = x w1 + b1, dz/dx = w1)
//   Z:        (2N, H)       a later layer's pre-activation rows z, then its tangent rows u = dz/dx
//   A, G, GA: (2N, H)       activations a then tangents t; gradients of (z, u); of (a, t)
// A "source" gives (z, u) at row n, unit h: from x for the first layer, from Z (plus the bias) after.
//
// Built by native.py with -O3 -march=native and no fast-math: NaN and Inf propagate as IEEE says
// (divergence detection depends on it); reductions over units use `omp simd` (-fopenmp-simd).

#include <cstdint>
#include <cstring>

namespace {

template <class T> struct Consts;
template <> struct Consts<float> {
    static constexpr float lo = -87.0f;  // exp(lo) is still a normal float
    static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // Cody-Waite split
    static constexpr int exp_degree = 7, log_terms = 8;
    using Int = int32_t;
    static constexpr int mantissa = 23, bias = 127;
};
template <> struct Consts<double> {
    static constexpr double lo = -708.0;
    static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
    static constexpr double ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
    static constexpr int exp_degree = 13, log_terms = 18;
    using Int = int64_t;
    static constexpr int mantissa = 52, bias = 1023;
};

constexpr double kInvFactorial[14] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720,
    1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
    1.0 / 6227020800.0};

// exp(x) for x <= 0, which is all the activations need (they pass -|z|): x = k ln2 + r with
// |r| <= ln2/2, exp(r) by its Taylor polynomial (error below the type's rounding), times 2^k set
// in the exponent bits. Inputs below `lo` are clamped (exp(lo) is ~1e-38 in float32); NaN stays NaN.
template <class T> inline T exp_nonpositive(T x) {
    using C = Consts<T>;
    x = x < C::lo ? C::lo : x;
    const T k = (x * T(1.4426950408889634) + C::shifter) - C::shifter;  // round(x / ln2)
    const T r = (x - k * C::ln2_hi) - k * C::ln2_lo;
    T p = T(kInvFactorial[C::exp_degree]);
#pragma GCC unroll 16
    for (int i = C::exp_degree - 1; i >= 0; --i) p = p * r + T(kInvFactorial[i]);
    const typename C::Int bits = (static_cast<typename C::Int>(k) + C::bias) << C::mantissa;
    T scale;
    std::memcpy(&scale, &bits, sizeof(T));
    return p * scale;
}

// log(1 + e) for 0 <= e <= 1, as 2 atanh(s) with s = e / (2 + e) <= 1/3: the odd series in s,
// accurate for tiny e too (where log(1 + e) would round 1 + e to 1).
template <class T> inline T log1p_unit(T e) {
    const T s = e / (T(2) + e), s2 = s * s;
    T p = T(1) / T(2 * Consts<T>::log_terms - 1);
#pragma GCC unroll 32
    for (int i = Consts<T>::log_terms - 2; i >= 0; --i) p = p * s2 + T(1) / T(2 * i + 1);
    return T(2) * s * p;
}

// sigmoid(z) from e = exp(-|z|), without overflow on either side.
template <class T> inline T sigmoid_from(T z, T e) {
    const T p = T(1) / (T(1) + e);
    return z >= T(0) ? p : e * p;
}

// Each activation: z -> sigma, sigma', sigma''. `second` is false where sigma'' is identically 0.
struct Relu {
    static constexpr bool second = false;
    template <class T> static inline void eval(T z, T& a, T& d1, T& d2) {
        a = z < T(0) ? T(0) : z;  // NaN stays NaN, as torch.relu
        d1 = z > T(0) ? T(1) : T(0);
        d2 = T(0);
    }
};
struct Tanh {
    static constexpr bool second = true;
    template <class T> static inline void eval(T z, T& a, T& d1, T& d2) {
        const T e = exp_nonpositive(T(-2) * (z < T(0) ? -z : z));
        const T m = (T(1) - e) / (T(1) + e);  // tanh(|z|)
        a = z < T(0) ? -m : m;
        d1 = T(1) - a * a;
        d2 = T(-2) * a * d1;
    }
};
struct Silu {
    static constexpr bool second = true;
    template <class T> static inline void eval(T z, T& a, T& d1, T& d2) {
        const T p = sigmoid_from(z, exp_nonpositive(z < T(0) ? z : -z));
        const T q = p * (T(1) - p);
        a = z * p;
        d1 = p + z * q;
        d2 = q * (T(2) + z * (T(1) - T(2) * p));
    }
};
struct Softplus {  // as torch.nn.Softplus: linear (slope exactly 1) above 20
    static constexpr bool second = true;
    template <class T> static inline void eval(T z, T& a, T& d1, T& d2) {
        const T e = exp_nonpositive(z < T(0) ? z : -z);
        const bool linear = z > T(20);
        a = linear ? z : (z > T(0) ? z : T(0)) + log1p_unit(e);
        d1 = linear ? T(1) : sigmoid_from(z, e);
        d2 = d1 * (T(1) - d1);
    }
};

// Where a layer's (z, u) come from.
template <class T> struct FromInput {  // the first layer: z = x w1 + b1, u = w1
    const T *x, *w, *b;
    inline void at(long n, long h, T& z, T& u) const {
        z = x[n] * w[h] + b[h];
        u = w[h];
    }
};
template <class T> struct FromRows {  // later layers: z = Z[n] + b, u = Z[N + n]
    const T *Z, *b;
    long N, H;
    inline void at(long n, long h, T& z, T& u) const {
        z = Z[n * H + h] + b[h];
        u = Z[(N + n) * H + h];
    }
};

// A hidden layer's output rows: a = sigma(z), t = sigma'(z) u.
template <class T, class Act, class Src> void forward(const Src& src, long N, long H, T* A) {
    for (long n = 0; n < N; ++n) {
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T z, u, a, d1, d2;
            src.at(n, h, z, u);
            Act::eval(z, a, d1, d2);
            A[n * H + h] = a;
            A[(N + n) * H + h] = d1 * u;
        }
    }
}

// Chain rule through one unit, given the gradients (ga, gt) of its outputs (a, t = sigma'(z) u).
template <class Act, class T> inline void through(T d1, T d2, T u, T ga, T gt, T& gz, T& gu) {
    gz = ga * d1;
    if constexpr (Act::second) gz += gt * u * d2;
    gu = gt * d1;
}

// Where the gradients (gz, gu) of a layer's (z, u) go: the first layer reduces them into its
// weights; a later layer writes them out as G rows for the matrix products.
template <class T> struct IntoInput {
    const T* x;
    T* gw;
    inline void put(long n, long h, long, T gz, T gu) const { gw[h] += x[n] * gz + gu; }
};
template <class T> struct IntoRows {
    T* G;
    inline void put(long n, long h, long N, T gz, T gu) const {
        G[n * G_H + h] = gz;
        G[(N + n) * G_H + h] = gu;
    }
    long G_H;
};

// Backward through a hidden layer's activation: GA holds (ga; gt) rows; gb accumulates sum gz.
template <class T, class Act, class Src, class Dst>
void backward(const Src& src, const Dst& dst, long N, long H, const T* GA, T* gb) {
    for (long n = 0; n < N; ++n) {
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T z, u, a, d1, d2, gz, gu;
            src.at(n, h, z, u);
            Act::eval(z, a, d1, d2);
            through<Act>(d1, d2, u, GA[n * H + h], GA[(N + n) * H + h], gz, gu);
            gb[h] += gz;
            dst.put(n, h, N, gz, gu);
        }
    }
}

// The last hidden layer's activation, the one-unit output layer and the loss, fused per row:
// y = sum_h a w + b_out, dy = sum_h t w; residuals r = y - f, q = dy - df; squared sums into
// sq_f, sq_df. With grad, also the loss's gradients back to the layer's (z, u): gy = 2 r / N,
// gdy = 2 weight q / N, (ga, gt) = (gy, gdy) w, then through the activation.
template <class T, class Act, class Src, class Dst>
void head(const Src& src, const Dst& dst, long N, long H, const T* w, T b_out, const T* f, const T* df,
          T weight, bool grad, T* gb, T* gw, T* gb_out, double* sq_f, double* sq_df, T* scratch) {
    T *sa = scratch, *s1 = scratch + H, *s2 = scratch + 2 * H, *su = scratch + 3 * H;
    double sum_f = 0, sum_df = 0;
    T sum_gy = 0;
    for (long n = 0; n < N; ++n) {
        T y = b_out, dy = 0;
#pragma omp simd reduction(+ : y, dy)
        for (long h = 0; h < H; ++h) {
            T z, u;
            src.at(n, h, z, u);
            Act::eval(z, sa[h], s1[h], s2[h]);
            su[h] = u;
            y += sa[h] * w[h];
            dy += s1[h] * u * w[h];
        }
        const T r = y - f[n], q = dy - df[n];
        sum_f += double(r) * r;
        sum_df += double(q) * q;
        if (!grad) continue;
        const T gy = T(2) * r / T(N), gdy = T(2) * weight * q / T(N);
        sum_gy += gy;
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T gz, gu;
            gw[h] += gy * sa[h] + gdy * s1[h] * su[h];
            through<Act>(s1[h], s2[h], su[h], gy * w[h], gdy * w[h], gz, gu);
            gb[h] += gz;
            dst.put(n, h, N, gz, gu);
        }
    }
    // Rounded to T, as the loss the reference engine computes in T: a sum that overflows T is a
    // diverged run there, so it must be one here.
    *sq_f = static_cast<T>(sum_f);
    *sq_df = static_cast<T>(sum_df);
    if (grad) *gb_out = sum_gy;
}

template <class T> inline void zero(T* p, long n) { std::memset(p, 0, sizeof(T) * n); }

}  // namespace

// C entry points, one set per (activation, dtype): loops over the M members of a stacked group.
// `alive[m]` == 0 marks a diverged member: its gradients are zero and nothing of it is computed.
#define RB_KERNELS(ACT, NAME, T, TN)                                                               \
    extern "C" void rb_forward_first_##NAME##_##TN(long M, long N, long H, const T* x, const T* w1, \
                                                   const T* b1, T* A) {                             \
        for (long m = 0; m < M; ++m)                                                                \
            forward<T, ACT>(FromInput<T>{x + m * N, w1 + m * H, b1 + m * H}, N, H, A + m * 2 * N * H); \
    }                                                                                               \
    extern "C" void rb_forward_rows_##NAME##_##TN(long M, long N, long H, const T* Z, const T* b,   \
                                                  T* A) {                                           \
        for (long m = 0; m < M; ++m)                                                                \
            forward<T, ACT>(FromRows<T>{Z + m * 2 * N * H, b + m * H, N, H}, N, H, A + m * 2 * N * H); \
    }                                                                                               \
    extern "C" void rb_backward_first_##NAME##_##TN(long M, long N, long H, const T* x, const T* w1, \
                                                    const T* b1, const T* GA, const uint8_t* alive, \
                                                    T* gw1, T* gb1) {                               \
        zero(gw1, M * H);                                                                           \
        zero(gb1, M * H);                                                                           \
        for (long m = 0; m < M; ++m)                                                                \
            if (alive[m])                                                                           \
                backward<T, ACT>(FromInput<T>{x + m * N, w1 + m * H, b1 + m * H},                   \
                                 IntoInput<T>{x + m * N, gw1 + m * H}, N, H, GA + m * 2 * N * H,    \
                                 gb1 + m * H);                                                      \
    }                                                                                               \
    extern "C" void rb_backward_rows_##NAME##_##TN(long M, long N, long H, const T* Z, const T* b,  \
                                                   const T* GA, const uint8_t* alive, T* G, T* gb) { \
        zero(gb, M * H);                                                                            \
        for (long m = 0; m < M; ++m) {                                                              \
            if (!alive[m]) {                                                                        \
                zero(G + m * 2 * N * H, 2 * N * H);                                                 \
                continue;                                                                           \
            }                                                                                       \
            backward<T, ACT>(FromRows<T>{Z + m * 2 * N * H, b + m * H, N, H},                       \
                             IntoRows<T>{G + m * 2 * N * H, H}, N, H, GA + m * 2 * N * H, gb + m * H); \
        }                                                                                           \
    }                                                                                               \
    /* G == nullptr: the head is the first layer (depth 1); its gradient goes into gw1. */          \
    /* gb == nullptr: losses only (validation). */                                                  \
    extern "C" void rb_head_##NAME##_##TN(long M, long N, long H, const T* x, const T* Z,           \
                                          const T* w_in, const T* b_in, const T* w, const T* b_out, \
                                          const T* f, const T* df, const T* weight,                 \
                                          const uint8_t* alive, T* G, T* gw1, T* gb, T* gw,         \
                                          T* gb_out, double* sq_f, double* sq_df) {                 \
        const bool grad = gb != nullptr, first = Z == nullptr;                                      \
        T* scratch = new T[4 * H];                                                                  \
        if (grad) {                                                                                 \
            zero(gb, M * H);                                                                        \
            zero(gw, M * H);                                                                        \
            zero(gb_out, M);                                                                        \
            if (first) zero(gw1, M * H);                                                            \
        }                                                                                           \
        for (long m = 0; m < M; ++m) {                                                              \
            const bool g = grad && alive[m];                                                        \
            if (grad && !alive[m] && !first) zero(G + m * 2 * N * H, 2 * N * H);                    \
            const T *wm = w + m * H, *fm = f + m * N, *dfm = df + m * N;                            \
            T *gbm = gb ? gb + m * H : nullptr, *gwm = gw ? gw + m * H : nullptr;                   \
            T* gbom = gb_out ? gb_out + m : nullptr;                                                \
            if (first) {                                                                            \
                FromInput<T> src{x + m * N, w_in + m * H, b_in + m * H};                            \
                IntoInput<T> dst{x + m * N, gw1 ? gw1 + m * H : nullptr};                           \
                head<T, ACT>(src, dst, N, H, wm, b_out[m], fm, dfm, g ? weight[m] : T(0), g, gbm, gwm, gbom,   \
                             sq_f + m, sq_df + m, scratch);                                         \
            } else {                                                                                \
                FromRows<T> src{Z + m * 2 * N * H, b_in + m * H, N, H};                             \
                IntoRows<T> dst{G ? G + m * 2 * N * H : nullptr, H};                                \
                head<T, ACT>(src, dst, N, H, wm, b_out[m], fm, dfm, g ? weight[m] : T(0), g, gbm, gwm, gbom,   \
                             sq_f + m, sq_df + m, scratch);                                         \
            }                                                                                       \
        }                                                                                           \
        delete[] scratch;                                                                           \
    }

#define RB_ACTIVATION(ACT, NAME)       \
    RB_KERNELS(ACT, NAME, float, float32) \
    RB_KERNELS(ACT, NAME, double, float64)

RB_ACTIVATION(Relu, relu)
RB_ACTIVATION(Tanh, tanh)
RB_ACTIVATION(Silu, silu)
RB_ACTIVATION(Softplus, softplus)
