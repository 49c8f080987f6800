// Element-wise loops for the wasm backend's heap, compiled to WebAssembly
// with SIMD (scripts/build_simd.sh) and run on the backend's own memory.
// Scalar TypeScript runs these at 1 to 3 ns an element; vectorised wasm at a
// fraction of that. No function uses the stack or static data, so nothing
// of the backend's memory is touched but the ranges passed in.
//
// Pointers are byte offsets into the shared memory; counts are elements.

#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

// out ← grad where hidden > 0, else 0. hidden is a ReLU output (bits 0 or a
// positive integer), so −bits >> 31 is all ones exactly where it is positive.
// out may be grad.
EXPORT(relu_mask)
void relu_mask(const int *grad, const int *restrict hidden, int *out, int n) {
  for (int i = 0; i < n; i++) out[i] = grad[i] & (-hidden[i] >> 31);
}

// out[m][j] ← Σ_r src[m][r][j]: per member, the sum of a [rows, cols] block's rows.
EXPORT(sum_rows)
void sum_rows(const float *restrict src, int members, int rows, int cols, float *restrict out) {
  for (int m = 0; m < members; m++) {
    float *target = out + m * cols;
    for (int j = 0; j < cols; j++) target[j] = 0.0f;
    for (int r = 0; r < rows; r++) {
      const float *row = src + ((long)m * rows + r) * cols;
      for (int j = 0; j < cols; j++) target[j] += row[j];
    }
  }
}

// One Adam step (PyTorch's rule) with the bias corrections folded into
// step_size = lr / (1 − β₁ᵗ) and inv_root_c2 = 1 / √(1 − β₂ᵗ). Outputs may be
// the inputs (in place), so the vector loop is written out by hand: the
// compiler will not vectorise seven possibly aliased pointers on its own.
EXPORT(adam)
void adam(const float *param, const float *grad, const float *m, const float *v, float *param_out,
          float *m_out, float *v_out, int n, float beta1, float beta2, float epsilon,
          float step_size, float inv_root_c2) {
  const float one_minus_beta1 = 1.0f - beta1;
  const float one_minus_beta2 = 1.0f - beta2;
  const v128_t b1 = wasm_f32x4_splat(beta1), c1 = wasm_f32x4_splat(one_minus_beta1);
  const v128_t b2 = wasm_f32x4_splat(beta2), c2 = wasm_f32x4_splat(one_minus_beta2);
  const v128_t eps = wasm_f32x4_splat(epsilon), step = wasm_f32x4_splat(step_size);
  const v128_t root = wasm_f32x4_splat(inv_root_c2);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t g = wasm_v128_load(grad + i);
    const v128_t first = wasm_f32x4_add(wasm_f32x4_mul(b1, wasm_v128_load(m + i)),
                                        wasm_f32x4_mul(c1, g));
    const v128_t second = wasm_f32x4_add(wasm_f32x4_mul(b2, wasm_v128_load(v + i)),
                                         wasm_f32x4_mul(wasm_f32x4_mul(c2, g), g));
    const v128_t denominator = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_sqrt(second), root), eps);
    const v128_t p = wasm_f32x4_sub(wasm_v128_load(param + i),
                                    wasm_f32x4_div(wasm_f32x4_mul(step, first), denominator));
    wasm_v128_store(m_out + i, first);
    wasm_v128_store(v_out + i, second);
    wasm_v128_store(param_out + i, p);
  }
  for (; i < n; i++) {
    const float g = grad[i];
    const float first = beta1 * m[i] + one_minus_beta1 * g;
    const float second = beta2 * v[i] + one_minus_beta2 * g * g;
    m_out[i] = first;
    v_out[i] = second;
    param_out[i] = param[i] - step_size * first / (__builtin_sqrtf(second) * inv_root_c2 + epsilon);
  }
}

// out ← a + w·(b − a); out may be a.
EXPORT(lerp) void lerp(const float *a, const float *restrict b, float *out, int n, float w) {
  for (int i = 0; i < n; i++) out[i] = a[i] + w * (b[i] - a[i]);
}

// GroupNorm over channels-last rows: x is [batch, positions, channels], the
// channels split into contiguous groups of group_size. Sums run per channel
// across positions (whole rows, vectorised over channels), then per group.
// The loops over channels are SIMD by hand, four channels at a time with a
// scalar tail (the compiler left them scalar): each channel's sum still runs
// over the positions in order, so results are the plain loops', bit for bit.
// scratch holds 4·channels floats.

// sums[c] ← Σ_p rows[p][c].
static void column_sums(const float *rows, int positions, int channels, float *sums) {
  int c = 0;
  for (; c + 4 <= channels; c += 4) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < positions; p++)
      acc = wasm_f32x4_add(acc, wasm_v128_load(rows + (long)p * channels + c));
    wasm_v128_store(sums + c, acc);
  }
  for (; c < channels; c++) {
    float acc = 0.0f;
    for (int p = 0; p < positions; p++) acc += rows[(long)p * channels + c];
    sums[c] = acc;
  }
}

// sums[c] ← Σ_p (rows[p][c] − mean[c])².
static void column_square_deviations(const float *rows, int positions, int channels,
                                     const float *mean, float *sums) {
  int c = 0;
  for (; c + 4 <= channels; c += 4) {
    const v128_t m = wasm_v128_load(mean + c);
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int p = 0; p < positions; p++) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(rows + (long)p * channels + c), m);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(d, d));
    }
    wasm_v128_store(sums + c, acc);
  }
  for (; c < channels; c++) {
    float acc = 0.0f;
    for (int p = 0; p < positions; p++) {
      const float d = rows[(long)p * channels + c] - mean[c];
      acc += d * d;
    }
    sums[c] = acc;
  }
}

// Forward: per (example, group) mean and 1/σ (written to mean and inv_std,
// [batch, groups]), then y = x·scale[c] + shift[c] with scale = γ/σ and
// shift = β − mean·γ/σ, and max(y, 0) when relu is set.
EXPORT(group_norm_forward)
void group_norm_forward(const float *restrict x, const float *restrict gamma,
                        const float *restrict beta, int batch, int positions, int channels,
                        int group_size, float epsilon, int relu, float *restrict y,
                        float *restrict mean, float *restrict inv_std, float *restrict scratch) {
  const int groups = channels / group_size;
  const float count = (float)positions * (float)group_size;
  float *channel_sum = scratch;
  float *channel_mean = scratch + channels;
  float *scale = scratch + 2 * channels;
  float *shift = scratch + 3 * channels;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int n = 0; n < batch; n++) {
    const float *xs = x + (long)n * positions * channels;
    float *ys = y + (long)n * positions * channels;
    column_sums(xs, positions, channels, channel_sum);
    for (int g = 0; g < groups; g++) {
      float sum = 0.0f;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) sum += channel_sum[c];
      const float m = sum / count;
      mean[n * groups + g] = m;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) channel_mean[c] = m;
    }
    column_square_deviations(xs, positions, channels, channel_mean, channel_sum);
    for (int g = 0; g < groups; g++) {
      float sum = 0.0f;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) sum += channel_sum[c];
      const float r = 1.0f / __builtin_sqrtf(sum / count + epsilon);
      inv_std[n * groups + g] = r;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) {
        scale[c] = gamma[c] * r;
        shift[c] = beta[c] - channel_mean[c] * scale[c];
      }
    }
    for (int p = 0; p < positions; p++) {
      const float *row = xs + (long)p * channels;
      float *out = ys + (long)p * channels;
      int c = 0;
      for (; c + 4 <= channels; c += 4) {
        v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + c), wasm_v128_load(scale + c)),
                                  wasm_v128_load(shift + c));
        wasm_v128_store(out + c, relu ? wasm_f32x4_max(v, zero) : v);
      }
      for (; c < channels; c++) {
        const float v = row[c] * scale[c] + shift[c];
        out[c] = relu ? __builtin_wasm_max_f32(v, 0.0f) : v;
      }
    }
  }
}

// dy through the ReLU's mask, four lanes: y is a ReLU output (bits 0 or a
// positive integer), so −bits >> 31 is all ones exactly where it is positive.
static inline v128_t masked4(const float *dy, const float *y, long i, int relu) {
  const v128_t g = wasm_v128_load(dy + i);
  return relu ? wasm_v128_and(g, wasm_i32x4_shr(wasm_i32x4_neg(wasm_v128_load(y + i)), 31)) : g;
}

static inline float masked1(const float *dy, const float *y, long i, int relu) {
  if (!relu) return dy[i];
  const int bits = ((const int *)dy)[i] & (-((const int *)y)[i] >> 31);
  return *(const float *)&bits;
}

// Backward, with x̂ = (x − mean)/σ: dβ = Σ dy, dγ = Σ dy·x̂, and
// dx = σ⁻¹(dx̂ − m₁ − x̂·m₂) with dx̂ = dy·γ and m₁, m₂ the group means of dx̂
// and dx̂·x̂. Kept in that form (not expanded in x), so that a group whose
// values are all equal gets an exact zero. With relu set, dy first passes
// the ReLU's mask, read off the forward output y, as it is read. dx may be
// dy. d_gamma and d_beta ([channels]) are overwritten. scratch holds
// 6·channels floats.
EXPORT(group_norm_backward)
void group_norm_backward(const float *dy, const float *restrict x, const float *restrict gamma,
                         const float *restrict mean, const float *restrict inv_std,
                         const float *restrict y, int relu, int batch, int positions,
                         int channels, int group_size, float *dx, float *restrict d_gamma,
                         float *restrict d_beta, float *restrict scratch) {
  const int groups = channels / group_size;
  const float count = (float)positions * (float)group_size;
  float *mu = scratch;
  float *rs = scratch + channels;
  float *sum_dy = scratch + 2 * channels;
  float *sum_dy_xhat = scratch + 3 * channels;
  float *a = scratch + 4 * channels;  // m₁ per channel
  float *b = scratch + 5 * channels;  // m₂ per channel
  for (int c = 0; c < channels; c++) d_gamma[c] = d_beta[c] = 0.0f;
  for (int n = 0; n < batch; n++) {
    const long base = (long)n * positions * channels;
    const float *xs = x + base;
    for (int g = 0; g < groups; g++)
      for (int c = g * group_size; c < (g + 1) * group_size; c++) {
        mu[c] = mean[n * groups + g];
        rs[c] = inv_std[n * groups + g];
      }
    int c = 0;
    for (; c + 4 <= channels; c += 4) {
      const v128_t m = wasm_v128_load(mu + c), r = wasm_v128_load(rs + c);
      v128_t s1 = wasm_f32x4_splat(0.0f), s2 = wasm_f32x4_splat(0.0f);
      for (int p = 0; p < positions; p++) {
        const long i = base + (long)p * channels + c;
        const v128_t g = masked4(dy, y, i, relu);
        s1 = wasm_f32x4_add(s1, g);
        s2 = wasm_f32x4_add(
            s2, wasm_f32x4_mul(wasm_f32x4_mul(g, wasm_f32x4_sub(wasm_v128_load(x + i), m)), r));
      }
      wasm_v128_store(sum_dy + c, s1);
      wasm_v128_store(sum_dy_xhat + c, s2);
    }
    for (; c < channels; c++) {
      float s1 = 0.0f, s2 = 0.0f;
      for (int p = 0; p < positions; p++) {
        const long i = base + (long)p * channels + c;
        const float g = masked1(dy, y, i, relu);
        s1 += g;
        s2 += g * (x[i] - mu[c]) * rs[c];
      }
      sum_dy[c] = s1;
      sum_dy_xhat[c] = s2;
    }
    for (int g = 0; g < groups; g++) {
      float m1 = 0.0f, m2 = 0.0f;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) {
        m1 += gamma[c] * sum_dy[c];
        m2 += gamma[c] * sum_dy_xhat[c];
      }
      m1 /= count;
      m2 /= count;
      for (int c = g * group_size; c < (g + 1) * group_size; c++) {
        a[c] = m1;
        b[c] = m2;
      }
    }
    for (int c = 0; c < channels; c++) {
      d_beta[c] += sum_dy[c];
      d_gamma[c] += sum_dy_xhat[c];
    }
    for (int p = 0; p < positions; p++) {
      const long row = base + (long)p * channels;
      int c = 0;
      for (; c + 4 <= channels; c += 4) {
        const long i = row + c;
        const v128_t r = wasm_v128_load(rs + c);
        const v128_t x_hat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + i), wasm_v128_load(mu + c)), r);
        const v128_t dx_hat = wasm_f32x4_mul(masked4(dy, y, i, relu), wasm_v128_load(gamma + c));
        const v128_t inner = wasm_f32x4_sub(wasm_f32x4_sub(dx_hat, wasm_v128_load(a + c)),
                                            wasm_f32x4_mul(x_hat, wasm_v128_load(b + c)));
        wasm_v128_store(dx + i, wasm_f32x4_mul(r, inner));
      }
      for (; c < channels; c++) {
        const long i = row + c;
        const float x_hat = (x[i] - mu[c]) * rs[c];
        dx[i] = rs[c] * (masked1(dy, y, i, relu) * gamma[c] - a[c] - x_hat * b[c]);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Single-precision GEMM for the pure-wasm path (no BLAS library):
// C = op(A)·op(B) + beta·C, row-major, op(X) = X or Xᵀ, with op(A) m×k and
// op(B) k×n. A is packed into panels of 4 rows and B into panels of 8
// columns (transposes are absorbed by the packing), then a 6×8 register
// tile of SIMD accumulators runs down k. pack holds ⌈m/6⌉·6·k + 8·k + 48
// floats.


#define MR 6
#define NR 8

static void pack_a(int trans, int m, int k, const float *a, int lda, float *out) {
  for (int i0 = 0; i0 < m; i0 += MR) {
    float *panel = out + (long)i0 * k;
    for (int p = 0; p < k; p++)
      for (int r = 0; r < MR; r++) {
        const int i = i0 + r;
        panel[p * MR + r] = i < m ? (trans ? a[(long)p * lda + i] : a[(long)i * lda + p]) : 0.0f;
      }
  }
}

static void pack_b(int trans, int n, int k, int j0, const float *b, int ldb, float *out) {
  for (int p = 0; p < k; p++)
    for (int c = 0; c < NR; c++) {
      const int j = j0 + c;
      out[p * NR + c] = j < n ? (trans ? b[(long)j * ldb + p] : b[(long)p * ldb + j]) : 0.0f;
    }
}

EXPORT(sgemm)
void sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b,
           int ldb, float beta, float *c, int ldc, float *pack) {
  float *packed_a = pack;
  float *packed_b = pack + (long)((m + MR - 1) / MR) * MR * k;
  // The register tile goes through here to C (partial tiles), not the stack.
  float *tile = packed_b + (long)NR * k;
  pack_a(trans_a, m, k, a, lda, packed_a);
  for (int j0 = 0; j0 < n; j0 += NR) {
    pack_b(trans_b, n, k, j0, b, ldb, packed_b);
    const int cols = n - j0 < NR ? n - j0 : NR;
    for (int i0 = 0; i0 < m; i0 += MR) {
      const float *pa = packed_a + (long)i0 * k;
      v128_t acc[MR][2];
#pragma unroll
      for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = wasm_f32x4_splat(0);
      for (int p = 0; p < k; p++) {
        const v128_t b0 = wasm_v128_load(packed_b + p * NR);
        const v128_t b1 = wasm_v128_load(packed_b + p * NR + 4);
#pragma unroll
        for (int r = 0; r < MR; r++) {
          const v128_t ar = wasm_f32x4_splat(pa[p * MR + r]);
          acc[r][0] = wasm_f32x4_add(acc[r][0], wasm_f32x4_mul(ar, b0));
          acc[r][1] = wasm_f32x4_add(acc[r][1], wasm_f32x4_mul(ar, b1));
        }
      }
#pragma unroll
      for (int r = 0; r < MR; r++) {
        wasm_v128_store(tile + r * NR, acc[r][0]);
        wasm_v128_store(tile + r * NR + 4, acc[r][1]);
      }
      const int rows = m - i0 < MR ? m - i0 : MR;
      for (int r = 0; r < rows; r++) {
        float *row = c + (long)(i0 + r) * ldc + j0;
        if (beta == 0.0f)
          for (int q = 0; q < cols; q++) row[q] = tile[r * NR + q];
        else
          for (int q = 0; q < cols; q++) row[q] = tile[r * NR + q] + beta * row[q];
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Memory movement and element-wise binary ops.

// rows blocks of length floats: dst[r·dst_stride + i] ← src[r·src_stride + i]
// (a concatenation writes each input this way into its slice of the output).
EXPORT(copy_blocks)
void copy_blocks(const float *restrict src, int src_stride, float *restrict dst, int dst_stride,
                 int rows, int length) {
  for (int r = 0; r < rows; r++)
    __builtin_memcpy(dst + (long)r * dst_stride, src + (long)r * src_stride,
                     (unsigned long)length * sizeof(float));
}

// im2col for channels-last images: columns[p][(fy·filter_w + fx)·channels + c]
// holds the input under tap (fy, fx) for output position p, 0 outside.
EXPORT(im2col)
void im2col(const float *restrict input, int batch, int in_h, int in_w, int channels, int out_h,
            int out_w, int filter_h, int filter_w, int stride_h, int stride_w, int dilation_h,
            int dilation_w, int pad_top, int pad_left, float *restrict columns) {
  const unsigned long run = (unsigned long)channels * sizeof(float);
  float *column = columns;
  for (int b = 0; b < batch; b++) {
    const float *image = input + (long)b * in_h * in_w * channels;
    for (int oy = 0; oy < out_h; oy++)
      for (int ox = 0; ox < out_w; ox++)
        for (int fy = 0; fy < filter_h; fy++) {
          const int iy = oy * stride_h - pad_top + fy * dilation_h;
          for (int fx = 0; fx < filter_w; fx++) {
            const int ix = ox * stride_w - pad_left + fx * dilation_w;
            if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w)
              __builtin_memset(column, 0, run);
            else
              __builtin_memcpy(column, image + ((long)iy * in_w + ix) * channels, run);
            column += channels;
          }
        }
  }
}

// out[i] ← max or min of a[i·stride_a], b[i·stride_b] (strides 0 or 1), NaN
// propagating as Math.max and Math.min do.
#define BINARY(name, op)                                                                   \
  EXPORT(name)                                                                             \
  void name(const float *a, int stride_a, const float *b, int stride_b, float *out, int n) { \
    if (stride_a == 1 && stride_b == 1)                                                    \
      for (int i = 0; i < n; i++) out[i] = op(a[i], b[i]);                                 \
    else if (stride_a == 1)                                                                \
      for (int i = 0; i < n; i++) out[i] = op(a[i], b[0]);                                 \
    else if (stride_b == 1)                                                                \
      for (int i = 0; i < n; i++) out[i] = op(a[0], b[i]);                                 \
    else                                                                                   \
      for (int i = 0; i < n; i++) out[i] = op(a[0], b[0]);                                 \
  }
BINARY(maximum, __builtin_wasm_max_f32)
BINARY(minimum, __builtin_wasm_min_f32)

// out[m][r][j] ← out[m][r][j] + bias[m·stride + j], then max(·, 0) when relu
// is set: the bias and activation of a product, in one pass after it.
EXPORT(bias_activation)
void bias_activation(float *restrict out, const float *restrict bias, int stride, int members,
                     int rows, int cols, int relu) {
  for (int m = 0; m < members; m++) {
    const float *b = bias + m * stride;
    for (int r = 0; r < rows; r++) {
      float *row = out + ((long)m * rows + r) * cols;
      if (relu)
        for (int j = 0; j < cols; j++) row[j] = __builtin_wasm_max_f32(row[j] + b[j], 0.0f);
      else
        for (int j = 0; j < cols; j++) row[j] += b[j];
    }
  }
}

// ---------------------------------------------------------------------------
// 1-D convolutions over channels-last rows, "same" padding and unit stride
// (the denoiser's U-Net, compute/kernels_unet.ts). Each tap's block of the
// column matrix is `total` channels wide; a part of `channels` channels
// starts `offset` into it, so a concatenation along channels is filled (and
// its gradient read back) one part at a time, without a concatenated copy.

// Column matrix: for example b, output step o and tap t, the input at step
// q = o + t − before (zeros outside [0, length)) goes to
// columns[(b·length + o)·taps·total + t·total + offset …]. The input holds
// length/repeat steps per example, each read `repeat` times in a row, so
// repeat 2 is a nearest ×2 upsampling folded in.
EXPORT(im2col_rows)
void im2col_rows(const float *restrict src, int batch, int length, int repeat, int channels,
                 int taps, int before, int total, int offset, float *restrict columns) {
  const int stored = length / repeat;
  const unsigned long run = (unsigned long)channels * sizeof(float);
  for (int b = 0; b < batch; b++) {
    const float *example = src + (long)b * stored * channels;
    for (int o = 0; o < length; o++) {
      float *row = columns + ((long)b * length + o) * taps * total + offset;
      for (int t = 0; t < taps; t++) {
        const int q = o + t - before;
        if (q < 0 || q >= length)
          __builtin_memset(row + t * total, 0, run);
        else
          __builtin_memcpy(row + t * total, example + (long)(q / repeat) * channels, run);
      }
    }
  }
}

// The adjoint of im2col_rows with repeat 1: out[b][i] = Σₜ columns[b][o][t]
// (the part at `offset`) with o = i − t + before, taps in ascending order
// (the order in which per-tap products accumulate), steps outside [0,
// length) skipped. out is overwritten.
EXPORT(col2im_rows)
void col2im_rows(const float *restrict columns, int batch, int length, int channels, int taps,
                 int before, int total, int offset, float *restrict out) {
  for (int b = 0; b < batch; b++)
    for (int i = 0; i < length; i++) {
      float *target = out + ((long)b * length + i) * channels;
      for (int c = 0; c < channels; c++) target[c] = 0.0f;
      for (int t = 0; t < taps; t++) {
        const int o = i - t + before;
        if (o < 0 || o >= length) continue;
        const float *source = columns + ((long)b * length + o) * taps * total + t * total + offset;
        for (int c = 0; c < channels; c++) target[c] += source[c];
      }
    }
}

// Max-pooling by 2 along the rows: out[r] = max(x[2r], x[2r + 1]) per
// channel, NaN propagating as the Maximum kernel does.
EXPORT(max_pairs)
void max_pairs(const float *restrict x, int pairs, int channels, float *restrict out) {
  for (int r = 0; r < pairs; r++) {
    const float *even = x + (long)2 * r * channels;
    const float *odd = even + channels;
    float *target = out + (long)r * channels;
    for (int c = 0; c < channels; c++) target[c] = __builtin_wasm_max_f32(even[c], odd[c]);
  }
}

// Gradient of max_pairs as TF.js's Maximum gradient routes it: dy to the
// even row where x[2r] ≥ x[2r + 1] (ties go there), else to the odd row.
// With accumulate set, added to dx (a tensor that has another consumer).
// SIMD by hand: the compiler left the selects scalar.
EXPORT(max_pairs_backward)
void max_pairs_backward(const float *restrict x, const float *restrict dy, int pairs, int channels,
                        int accumulate, float *restrict dx) {
  for (int r = 0; r < pairs; r++) {
    const float *even = x + (long)2 * r * channels;
    const float *odd = even + channels;
    const float *g = dy + (long)r * channels;
    float *d_even = dx + (long)2 * r * channels;
    float *d_odd = d_even + channels;
    int c = 0;
    for (; c + 4 <= channels; c += 4) {
      const v128_t e = wasm_v128_load(even + c), o = wasm_v128_load(odd + c);
      const v128_t v = wasm_v128_load(g + c);
      v128_t to_even = wasm_v128_and(v, wasm_f32x4_ge(e, o));
      v128_t to_odd = wasm_v128_and(v, wasm_f32x4_lt(e, o));
      if (accumulate) {
        to_even = wasm_f32x4_add(wasm_v128_load(d_even + c), to_even);
        to_odd = wasm_f32x4_add(wasm_v128_load(d_odd + c), to_odd);
      }
      wasm_v128_store(d_even + c, to_even);
      wasm_v128_store(d_odd + c, to_odd);
    }
    for (; c < channels; c++) {
      const float to_even = even[c] >= odd[c] ? g[c] : 0.0f;
      const float to_odd = even[c] < odd[c] ? g[c] : 0.0f;
      d_even[c] = accumulate ? d_even[c] + to_even : to_even;
      d_odd[c] = accumulate ? d_odd[c] + to_odd : to_odd;
    }
  }
}
