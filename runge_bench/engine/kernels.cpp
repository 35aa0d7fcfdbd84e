// The batched engine's training step in C++, for the CPU (float32 and float64).
//
// batched.py states the arithmetic and implements it with torch ops (the specification); this
// file computes the same step for M stacked members: for each member, the points stream through
// the network in blocks of kBlock, forward and back, and each block's rows of every layer stay in
// cache between the dense products (register-tiled, below) and the elementwise work (activation,
// sigma', sigma'', tangent, output layer, loss, backward), instead of one pass over memory per
// op. tests/test_native.py holds it to the torch functions.
//
// Layout of one block (all row-major, contiguous):
//   x, f, df: (nb)          the block's points and targets
//   w1, b1:   (H)           the first layer (a scalar input: z = x w1 + b1, dz/dx = w1)
//   Z:        (2nb, H)      a later layer's pre-activation rows z, then its tangent rows u = dz/dx
//   A, G, GA: (2nb, H)      activations a then tangents t; gradients of (z, u); of (a, t)
// so that one product serves the value and the tangent rows: [z; u] = [a; t] W.
// A "source" gives (z, u) at row n, unit h: from x for the first layer, from Z (plus the bias) after.
//
// Built by native.py with -O3 -march=native and no fast-math: NaN and Inf propagate as IEEE says
// (divergence detection depends on it); -fno-trapping-math lets the activations vectorize
// (nothing here reads floating-point exception flags), -fno-math-errno lets Adam's sqrt vectorize
// (nothing reads errno; kept scalar, Adam took 8x longer); reductions use `omp simd`
// (-fopenmp-simd).

#include <cstdint>
#include <cmath>
#include <cstring>
#include <vector>

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
// in the exponent bits. Inputs below `lo` are clamped (exp(lo) is ~1e-38 in float32); NaN stays NaN:
// divergence detection relies on it. A NaN must not reach the integer cast below (undefined
// behaviour, and a negative shift: UBSan reported both), so it is computed as 0 and put back at the
// end; both are selects, which vectorize.
template <class T> inline T exp_nonpositive(T x) {
    using C = Consts<T>;
    const bool nan = x != x;
    const T xs = nan ? T(0) : (x < C::lo ? C::lo : x);
    const T k = (xs * T(1.4426950408889634) + C::shifter) - C::shifter;  // round(xs / ln2)
    const T r = (xs - k * C::ln2_hi) - k * C::ln2_lo;
    T p = T(kInvFactorial[C::exp_degree]);
#pragma GCC unroll 16
    for (int i = C::exp_degree - 1; i >= 0; --i) p = p * r + T(kInvFactorial[i]);
    const typename C::Int bits = (static_cast<typename C::Int>(k) + C::bias) << C::mantissa;
    T scale;
    std::memcpy(&scale, &bits, sizeof(T));
    return nan ? x : p * scale;
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

// Where a layer's (z, u) come from, a point (row) at a time: src.row(n).at(h, z, u). Rows hand
// out plain pointers, so that the loops over h see unit-stride loads (through a struct's fields
// and a row index, GCC's `omp simd` loops fell back to gathers).
template <class T> struct FromInput {  // the first layer: z = x w1 + b1, u = w1
    const T *x, *w, *b;
    struct Row {
        T x;
        const T *w, *b;
        inline void at(long h, T& z, T& u) const {
            z = x * w[h] + b[h];
            u = w[h];
        }
    };
    inline Row row(long n) const { return {x[n], w, b}; }
};
template <class T> struct FromRows {  // later layers: z = Z[n] + b, u = Z[N + n]
    const T *Z, *b;
    long N, H;
    struct Row {
        const T *z, *u, *b;
        inline void at(long h, T& z_, T& u_) const {
            z_ = z[h] + b[h];
            u_ = u[h];
        }
    };
    inline Row row(long n) const { return {Z + n * H, Z + (N + n) * H, b}; }
};

// A hidden layer's output rows: a = sigma(z), t = sigma'(z) u; with `keep`, sigma' and sigma''
// are kept too (N x H each), so that the backward need not evaluate the activation again.
template <class T, class Act, bool Keep = false, class Src>
void forward(const Src& src, long N, long H, T* A, T* keep = nullptr) {
    for (long n = 0; n < N; ++n) {
        const auto in = src.row(n);
        T *a_out = A + n * H, *t_out = A + (N + n) * H;
        T *k1 = Keep ? keep + n * H : nullptr, *k2 = Keep ? keep + (N + n) * H : nullptr;
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T z, u, a, d1, d2;
            in.at(h, z, u);
            Act::eval(z, a, d1, d2);
            a_out[h] = a;
            t_out[h] = d1 * u;
            if constexpr (Keep) {
                k1[h] = d1;
                if constexpr (Act::second) k2[h] = d2;
            }
        }
    }
}

// sigma'(z), sigma''(z) and u at unit h of a row: evaluated from a source's row, or read where
// forward kept them.
template <class Act, class T, class Row> inline void slopes(const Row& row, long h, T& d1, T& d2, T& u) {
    T z, a;
    row.at(h, z, u);
    Act::eval(z, a, d1, d2);
}
template <class T> struct KeptRow {
    const T *d1, *d2, *w;
};
template <class T> struct Kept {  // the first layer's slopes as forward kept them; u = w1
    const T *keep, *w;
    long N, H;
    inline KeptRow<T> row(long n) const { return {keep + n * H, keep + (N + n) * H, w}; }
};
template <class Act, class T> inline void slopes(const KeptRow<T>& row, long h, T& d1, T& d2, T& u) {
    d1 = row.d1[h];
    d2 = Act::second ? row.d2[h] : T(0);
    u = row.w[h];
}

// Chain rule through one unit, given the gradients (ga, gt) of its outputs (a, t = sigma'(z) u).
template <class Act, class T> inline void through(T d1, T d2, T u, T ga, T gt, T& gz, T& gu) {
    gz = ga * d1;
    if constexpr (Act::second) gz += gt * u * d2;
    gu = gt * d1;
}

// Where the gradients (gz, gu) of a layer's (z, u) go, a row at a time: the first layer reduces
// them into its weights; a later layer writes them out as G rows for the matrix products.
template <class T> struct IntoInput {
    const T* x;
    T* gw;
    struct Row {
        T x;
        T* gw;
        inline void put(long h, T gz, T gu) const { gw[h] += x * gz + gu; }
    };
    inline Row row(long n) const { return {x[n], gw}; }
};
template <class T> struct IntoRows {
    T* G;
    long N, H;
    struct Row {
        T *gz, *gu;
        inline void put(long h, T gz_, T gu_) const {
            gz[h] = gz_;
            gu[h] = gu_;
        }
    };
    inline Row row(long n) const { return {G + n * H, G + (N + n) * H}; }
};

// Backward through a hidden layer's activation: GA holds (ga; gt) rows; gb accumulates sum gz.
template <class T, class Act, class Src, class Dst>
void backward(const Src& src, const Dst& dst, long N, long H, const T* GA, T* gb) {
    for (long n = 0; n < N; ++n) {
        const auto in = src.row(n);
        const auto out = dst.row(n);
        const T *ga = GA + n * H, *gt = GA + (N + n) * H;
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T u, d1, d2, gz, gu;
            slopes<Act>(in, h, d1, d2, u);
            through<Act>(d1, d2, u, ga[h], gt[h], gz, gu);
            gb[h] += gz;
            out.put(h, gz, gu);
        }
    }
}

// The last hidden layer's activation, the one-unit output layer and the loss, fused per row:
// y = sum_h a w + b_out, dy = sum_h t w (stored in y_out, dy_out if given); residuals r = y - f,
// q = dy - df, their squares added to sq_f, sq_df (skipped where f is null). With grad, also the
// loss's gradients back to the layer's (z, u): gy = scale r, gdy = scale weight q (scale =
// 2 / points), (ga, gt) = (gy, gdy) w, then through the activation; gw, gb and gb_out accumulate.
template <class T> struct HeadArgs {
    const T* w;  // the output layer: H weights and its bias
    T b_out;
    const T* f;  // the block's targets, or null when only predicting
    const T* df;
    T scale, weight;  // the loss's 2 / points, and the member's derivative-loss weight
    bool grad;        // whether to compute gradients, into:
    T* gb;            // the last hidden layer's bias gradient (H)
    T* gw;            // the output layer's weight gradient (H)
    T* gb_out;        // and its bias gradient (1)
    T* y_out;         // the block's predictions, or null when not kept
    T* dy_out;
    T* scratch;  // 4 H values of the row in hand
};

template <class T, class Act, class Src, class Dst>
void head(const Src& src, const Dst& dst, long N, long H, const HeadArgs<T>& a, double& sq_f, double& sq_df) {
    const T *w = a.w, *f = a.f, *df = a.df;
    const T b_out = a.b_out, scale = a.scale, weight = a.weight;
    T *gb = a.gb, *gw = a.gw, *y_out = a.y_out, *dy_out = a.dy_out;
    T *sa = a.scratch, *s1 = a.scratch + H, *s2 = a.scratch + 2 * H, *su = a.scratch + 3 * H;
    for (long n = 0; n < N; ++n) {
        const auto in = src.row(n);
        T y = b_out, dy = 0;
#pragma omp simd reduction(+ : y, dy)
        for (long h = 0; h < H; ++h) {
            T z, u;
            in.at(h, z, u);
            Act::eval(z, sa[h], s1[h], s2[h]);
            su[h] = u;
            y += sa[h] * w[h];
            dy += s1[h] * u * w[h];
        }
        if (y_out) {
            y_out[n] = y;
            dy_out[n] = dy;
        }
        if (!f) continue;
        const T r = y - f[n], q = dy - df[n];
        sq_f += double(r) * r;
        sq_df += double(q) * q;
        if (!a.grad) continue;
        const T gy = scale * r, gdy = scale * weight * q;
        *a.gb_out += gy;
        const auto out = dst.row(n);
#pragma omp simd
        for (long h = 0; h < H; ++h) {
            T gz, gu;
            gw[h] += gy * sa[h] + gdy * s1[h] * su[h];
            through<Act>(s1[h], s2[h], su[h], gy * w[h], gdy * w[h], gz, gu);
            gb[h] += gz;
            out.put(h, gz, gu);
        }
    }
}

template <class T> inline void zero(T* p, long n) { std::memset(p, 0, sizeof(T) * n); }

// Dense products of row blocks: C (rows x cols) = A B, or += with acc, where A(i, k) is
// A[i * si + k * sk] (a row-major matrix, or a transposed view of one) and B is row-major with
// leading dimension ldb. Tiles of 6 rows x 2 vectors of columns (12 accumulators, the most that
// leave AVX2's 16 registers room for the operands) are held in registers while k runs (GCC
// vector extensions: AVX2 and FMA under -march=native on x86, NEON on ARM); rows left over go in
// tiles of 2 and 1, columns left over (widths not a multiple of 2 vectors) through a plain loop.
template <class T> struct Vec {
    typedef T type __attribute__((vector_size(32)));
    static constexpr long lanes = 32 / sizeof(T);
};
template <class T> inline typename Vec<T>::type vload(const T* p) {
    typename Vec<T>::type v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
template <class T> inline void vstore(T* p, typename Vec<T>::type v) { std::memcpy(p, &v, sizeof v); }
template <class T> inline typename Vec<T>::type splat(T s) {  // one broadcast: s - 0 folds to s,
    return s - typename Vec<T>::type{};                            // where 0 + s would cost an add
}

template <class T, int R>
inline void tile(long K, const T* A, long si, long sk, const T* B, long ldb, T* C, long ldc, bool acc) {
    using V = typename Vec<T>::type;
    constexpr long L = Vec<T>::lanes;
    V c0[R], c1[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        c0[r] = acc ? vload(C + r * ldc) : V{};
        c1[r] = acc ? vload(C + r * ldc + L) : V{};
    }
#pragma GCC unroll 4
    for (long k = 0; k < K; ++k) {
        const V b0 = vload(B + k * ldb), b1 = vload(B + k * ldb + L);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const V a = splat(A[r * si + k * sk]);
            c0[r] += a * b0;
            c1[r] += a * b1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        vstore(C + r * ldc, c0[r]);
        vstore(C + r * ldc + L, c1[r]);
    }
}

template <class T>
void gemm(long rows, long cols, long K, const T* A, long si, long sk, const T* B, long ldb, T* C, long ldc,
          bool acc) {
    constexpr long W = 2 * Vec<T>::lanes;
    long j = 0;
    for (; j + W <= cols; j += W) {
        long i = 0;
        for (; i + 6 <= rows; i += 6) tile<T, 6>(K, A + i * si, si, sk, B + j, ldb, C + i * ldc + j, ldc, acc);
        for (; i + 2 <= rows; i += 2) tile<T, 2>(K, A + i * si, si, sk, B + j, ldb, C + i * ldc + j, ldc, acc);
        for (; i < rows; ++i) tile<T, 1>(K, A + i * si, si, sk, B + j, ldb, C + i * ldc + j, ldc, acc);
    }
    for (; j < cols; ++j)
        for (long i = 0; i < rows; ++i) {
            T sum = acc ? C[i * ldc + j] : T(0);
            for (long k = 0; k < K; ++k) sum += A[i * si + k * sk] * B[k * ldb + j];
            C[i * ldc + j] = sum;
        }
}

// Points per row block. A step streams its points through the whole network a block at a time,
// forward and back, so every layer's rows of a block ([a; t], [z; u], [gz; gu]: 2 x 32 x width)
// stay in L1/L2 cache between the products and the elementwise work, instead of a pass over
// memory for each.
constexpr long kBlock = 32;

// One member's pass over its N points: losses (squared residual sums, added to sq_f, sq_df) and,
// with G, the gradients of MSE(f) + weight MSE(f') into G (zeros if not alive, and then nothing
// else is computed). P and G list the stacked (M, in, out) weight and (M, 1, out) bias arrays
// layer by layer, first layer to output layer; D hidden layers of width H.
template <class T, class Act>
void member_pass(long N, long H, long D, long m, const T* x, const T* f, const T* df, T weight, bool alive,
                 const T* const* P, T* const* G, double& sq_f, double& sq_df, T* work, T* y = nullptr,
                 T* dy = nullptr) {
    const bool grad = G != nullptr;
    std::vector<const T*> w(D + 1), b(D + 1);
    std::vector<T*> gw(D + 1, nullptr), gb(D + 1, nullptr);
    for (long l = 0; l <= D; ++l) {
        const long in = l == 0 ? 1 : H, out = l == D ? 1 : H;
        w[l] = P[2 * l] + m * in * out;
        b[l] = P[2 * l + 1] + m * out;
        if (grad) {
            gw[l] = G[2 * l] + m * in * out;
            gb[l] = G[2 * l + 1] + m * out;
            zero(gw[l], in * out);
            zero(gb[l], out);
        }
    }
    if (!alive) return;
    // work: per product layer l = 1 .. D-1 its input rows A and its output rows Z (then G, in
    // place), W_l transposed; then one block of input-gradient rows GA and the head's scratch.
    const long rows = 2 * kBlock * H;
    auto A = [&](long l) { return work + (l - 1) * rows; };
    auto Z = [&](long l) { return work + (D - 1 + l - 1) * rows; };
    auto Wt = [&](long l) { return work + 2 * (D - 1) * rows + (l - 1) * H * H; };
    T* GA = work + 2 * (D - 1) * rows + (D - 1) * H * H;
    T* keep = GA + rows;  // the first layer's sigma' and sigma'' rows of a block
    T* scratch = keep + rows;
    if (grad)
        for (long l = 1; l < D; ++l)
            for (long i = 0; i < H; ++i)
                for (long o = 0; o < H; ++o) Wt(l)[o * H + i] = w[l][i * H + o];
    const T scale = T(2) / T(N);

    for (long n0 = 0; n0 < N; n0 += kBlock) {
        const long nb = N - n0 < kBlock ? N - n0 : kBlock;
        const FromInput<T> first{x + n0, w[0], b[0]};
        const HeadArgs<T> last{w[D], b[D][0], f ? f + n0 : f, f ? df + n0 : df, scale, weight, grad,
                               gb[D - 1], gw[D], gb[D], y ? y + n0 : y, dy ? dy + n0 : dy, scratch};
        if (D == 1) {
            head<T, Act>(first, IntoInput<T>{x + n0, gw[0]}, nb, H, last, sq_f, sq_df);
            continue;
        }
        if (grad)
            forward<T, Act, true>(first, nb, H, A(1), keep);
        else
            forward<T, Act>(first, nb, H, A(1));
        for (long l = 1; l < D; ++l) {
            gemm<T>(2 * nb, H, H, A(l), H, 1, w[l], H, Z(l), H, false);  // [z; u] = [a; t] W
            if (l < D - 1) forward<T, Act>(FromRows<T>{Z(l), b[l], nb, H}, nb, H, A(l + 1));
        }
        head<T, Act>(FromRows<T>{Z(D - 1), b[D - 1], nb, H}, IntoRows<T>{Z(D - 1), nb, H}, nb, H, last, sq_f, sq_df);
        if (!grad) continue;
        for (long l = D - 1; l >= 1; --l) {
            gemm<T>(H, H, 2 * nb, A(l), 1, H, Z(l), H, gw[l], H, true);  // gW += [a; t]^T [gz; gu]
            gemm<T>(2 * nb, H, H, Z(l), H, 1, Wt(l), H, GA, H, false);   // [ga; gt] = [gz; gu] W^T
            if (l > 1)
                backward<T, Act>(FromRows<T>{Z(l - 1), b[l - 1], nb, H}, IntoRows<T>{Z(l - 1), nb, H}, nb, H, GA,
                                 gb[l - 1]);
            else
                backward<T, Act>(Kept<T>{keep, w[0], nb, H}, IntoInput<T>{x + n0, gw[0]}, nb, H, GA, gb[0]);
        }
    }
}

template <class T> long work_size(long H, long D) {
    return 2 * (D - 1) * 2 * kBlock * H + (D - 1) * H * H + 2 * 2 * kBlock * H + 4 * H;
}

// Rounded to T, as the loss the reference engine computes in T: a sum that overflows T is a
// diverged run there, so it must be one here.
template <class T> inline double as_loss(double sum) { return static_cast<T>(sum); }

}  // namespace

// C entry points, one set per (activation, dtype); x, f, df are (M, N), members back to back.
// rb_step: one training step of M members (alive[m] == 0: a diverged member, whose gradients are
// zeroed and whose losses are NaN); rb_losses: the losses alone; rb_predict: y and dy/dx at the
// points; rb_activation: sigma, sigma', sigma'' at n points (for tests). rb_adam, per dtype: one
// Adam update over a flat parameter buffer.
#define RB_KERNELS(ACT, NAME, T, TN)                                                                    \
    extern "C" void rb_step_##NAME##_##TN(long M, long N, long H, long D, const T* x, const T* f,        \
                                          const T* df, const T* weight, const uint8_t* alive,            \
                                          const T* const* P, T* const* G, double* sq_f, double* sq_df) { \
        std::vector<T> work(work_size<T>(H, D));                                                         \
        for (long m = 0; m < M; ++m) {                                                                   \
            double sf = 0, sdf = 0;                                                                      \
            member_pass<T, ACT>(N, H, D, m, x + m * N, f + m * N, df + m * N, weight[m], alive[m] != 0,  \
                                P, G, sf, sdf, work.data());                                             \
            sq_f[m] = alive[m] ? as_loss<T>(sf) : NAN;                                                   \
            sq_df[m] = alive[m] ? as_loss<T>(sdf) : NAN;                                                 \
        }                                                                                                \
    }                                                                                                    \
    extern "C" void rb_losses_##NAME##_##TN(long M, long N, long H, long D, const T* x, const T* f,      \
                                            const T* df, const T* const* P, double* sq_f,                \
                                            double* sq_df) {                                             \
        std::vector<T> work(work_size<T>(H, D));                                                         \
        for (long m = 0; m < M; ++m) {                                                                   \
            double sf = 0, sdf = 0;                                                                      \
            member_pass<T, ACT>(N, H, D, m, x + m * N, f + m * N, df + m * N, T(0), true, P, nullptr,    \
                                sf, sdf, work.data());                                                   \
            sq_f[m] = as_loss<T>(sf);                                                                    \
            sq_df[m] = as_loss<T>(sdf);                                                                  \
        }                                                                                                \
    }                                                                                                    \
    extern "C" void rb_predict_##NAME##_##TN(long M, long N, long H, long D, const T* x, const T* const* P, \
                                             T* y, T* dy) {                                              \
        std::vector<T> work(work_size<T>(H, D));                                                         \
        for (long m = 0; m < M; ++m) {                                                                   \
            double unused = 0;                                                                           \
            member_pass<T, ACT>(N, H, D, m, x + m * N, nullptr, nullptr, T(0), true, P, nullptr, unused, \
                                unused, work.data(), y + m * N, dy + m * N);                             \
        }                                                                                                \
    }                                                                                                    \
    extern "C" void rb_activation_##NAME##_##TN(long n, const T* z, T* a, T* d1, T* d2) {               \
        for (long i = 0; i < n; ++i) ACT::eval(z[i], a[i], d1[i], d2[i]);                                \
    }

// Adam, as torch.optim.Adam computes it (lerp for the first moment, bias corrections given), over
// n parameters with a learning rate each.
#define RB_ADAM(T, TN)                                                                                   \
    extern "C" void rb_adam_##TN(long n, T* p, const T* g, T* m, T* v, const T* lr, T b1, T b2, T eps,   \
                                 T bc1, T bc2_sqrt) {                                                    \
        _Pragma("omp simd") for (long i = 0; i < n; ++i) {                                               \
            m[i] += (T(1) - b1) * (g[i] - m[i]);                                                         \
            v[i] = v[i] * b2 + (T(1) - b2) * g[i] * g[i];                                                \
            p[i] -= (lr[i] / bc1) * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);                           \
        }                                                                                                \
    }
RB_ADAM(float, float32)
RB_ADAM(double, float64)

#define RB_ACTIVATION(ACT, NAME)          \
    RB_KERNELS(ACT, NAME, float, float32) \
    RB_KERNELS(ACT, NAME, double, float64)

RB_ACTIVATION(Relu, relu)
RB_ACTIVATION(Tanh, tanh)
RB_ACTIVATION(Silu, silu)
RB_ACTIVATION(Softplus, softplus)
