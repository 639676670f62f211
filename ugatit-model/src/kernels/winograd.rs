//! Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional
//! Neural Networks", CVPR 2016, eq. 8) for the 3x3, stride-1 convolutions of a reflection pad of
//! 1: the residual blocks and the upsampling blocks of the generator, about 93% of its
//! arithmetic. Each 2x2 output tile is `A^T [(G g G^T) . (B^T d B)] A` for the 4x4 input
//! patch `d` around it, so the products over input channels become 16 matrix products of a
//! quarter of im2col's length: 2.25x fewer multiplications.
//!
//! The three passes share the transformed operands, per block of tiles of one sample:
//! - forward: `M[xi] = U[xi] V[xi]` (`U = G g G^T`, `[16][c_out][c_in]`; `V = B^T d B`,
//!   `[c_in][16][tiles]`), then `y = A^T M A` per tile, plus the bias;
//! - input gradient: `dM = A dy A^T`, `dV[xi] = U[xi]^T dM[xi]`, `dd = B dV B^T` added into the
//!   patch, each padded position into the pixel it mirrors (the gradient of `ReflectionPad2d`);
//! - weight gradient: `dU[xi] += dM[xi] V[xi]^T` over all tiles, then `dg = G^T dU G`.
//!
//! The patches read the unpadded input through the reflection (no padded copy is built); an odd
//! height or width gets a last tile whose second row or column is computed and dropped. In the
//! upsampling blocks (`ConvGeometry::up` 2) they read the input before the official
//! nearest-neighbour `nn.Upsample` through that too, pixel `i` of the upsampled image being
//! pixel `i / 2` of the stored one, and the input gradient is added back the same way (the
//! gradient of the upsampling sums each 2x2 block), so the 4x larger upsampled input is
//! neither built nor kept.
//! The sums run in another order than PyTorch's direct convolution: results agree to float32
//! rounding, as a different convolution algorithm in PyTorch (cuDNN's Winograd) would.

use rayon::prelude::*;

use super::matmul::{matmul_on_one_thread, MatMut, MatRef};
use super::reflect_conv::{reflect, ConvGeometry};

/// Whether [`forward`] and [`backward`] compute this convolution: 3x3, stride 1, reflection
/// pad 1.
pub fn applies(g: &ConvGeometry) -> bool {
    g.k == 3 && g.stride == 1 && g.pad == 1
}

/// Transformed elements of a block of tiles, at most (about 4 MB of f32): `V` and `M` of a block
/// stay in the last-level cache while the 16 products read them.
const BLOCK_ELEMS: usize = 1 << 20;

// The transforms, applied along rows then columns (Lavin and Gray's matrices):
// B^T v = [v0 - v2, v1 + v2, v2 - v1, v1 - v3] for a patch row or column v;
// A^T m = [m0 + m1 + m2, m1 - m2 - m3] for a product row or column m;
// G g = [g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2] for a filter row or column g;
// and their adjoints B w, A y, G^T u for the gradients.

/// `G g` for one row or column `g` of a 3x3 filter.
#[inline(always)]
fn gmul(g: [f32; 3]) -> [f32; 4] {
    [
        g[0],
        0.5 * (g[0] + g[1] + g[2]),
        0.5 * (g[0] - g[1] + g[2]),
        g[2],
    ]
}

/// The adjoint of [`gmul`]: `G^T u`.
#[inline(always)]
fn gt(u: [f32; 4]) -> [f32; 3] {
    [
        u[0] + 0.5 * (u[1] + u[2]),
        0.5 * (u[1] - u[2]),
        u[3] + 0.5 * (u[1] + u[2]),
    ]
}

/// Applies a 1-d transform `f` to the rows, then the columns, of a `R x R` tile (row-major),
/// giving an `S x S` one (the filter transforms, once per filter).
#[inline(always)]
fn both_ways<const R: usize, const S: usize>(
    t: [[f32; R]; R],
    f: impl Fn([f32; R]) -> [f32; S],
) -> [[f32; S]; S] {
    // f applied to each column of t gives an S x R tile, then to each of its rows.
    let mut cols = [[0.0; R]; S];
    for j in 0..R {
        let c = f(std::array::from_fn(|i| t[i][j]));
        for i in 0..S {
            cols[i][j] = c[i];
        }
    }
    std::array::from_fn(|i| f(cols[i]))
}

/// `dst[t] = f(a[t], b[t])` over equal lengths (vectorised by the compiler).
#[inline(always)]
fn zip2(dst: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
        *d = f(*x, *y);
    }
}

/// `dst[t] = -a[t]`.
#[inline(always)]
fn negate(dst: &mut [f32], a: &[f32]) {
    for (d, x) in dst.iter_mut().zip(a) {
        *d = -x;
    }
}

/// `dst[t] = f(a[t], b[t], c[t])`.
#[inline(always)]
fn zip3(dst: &mut [f32], a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) {
    for (((d, x), y), z) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d = f(*x, *y, *z);
    }
}

/// The tiles of one convolution and where their patches read. The transforms run a row of
/// tiles at a time, on the patches' padded rows split into even and odd columns: tile `t`'s
/// patch columns are `even[t], odd[t], even[t + 1], odd[t + 1]`, so each step of a 1-d
/// transform is one vector operation over the whole row of tiles.
struct Tiles {
    g: ConvGeometry,
    /// Tiles down and across one sample.
    th: usize,
    tw: usize,
    /// Stored input row read at padded row `p` (`0..2 * th + 2`) of the patches; `h / up`: a
    /// zero row (past the reflection, only under the dropped output row of an odd height).
    rows: Vec<usize>,
    /// Stored input column at padded column `2t` (`even`) and `2t + 1` (`odd`), `t` in
    /// `0..=tw`; `w / up`: a zero.
    even: Vec<usize>,
    odd: Vec<usize>,
    /// Rows of tiles in a block.
    block_rows: usize,
}

impl Tiles {
    fn new(g: ConvGeometry) -> Self {
        let (th, tw) = (g.h.div_ceil(2), g.w.div_ceil(2));
        let src = |p: usize, n: usize| {
            let i = p as isize - 1;
            if i <= n as isize {
                reflect(i, n)
            } else {
                n
            }
        };
        // An upsampled input's pixel i is the stored one's i / up; the zero marker n becomes the
        // stored size n / up.
        let stored = |i: usize| i / g.up;
        let widest = g.c_in.max(g.c_out);
        Self {
            rows: (0..2 * th + 2).map(|p| stored(src(p, g.h))).collect(),
            even: (0..=tw).map(|t| stored(src(2 * t, g.w))).collect(),
            odd: (0..=tw).map(|t| stored(src(2 * t + 1, g.w))).collect(),
            block_rows: (BLOCK_ELEMS / (16 * widest * tw))
                .max(64usize.div_ceil(tw))
                .clamp(1, th),
            th,
            tw,
            g,
        }
    }

    /// Blocks `[r0, r1)` of one sample's rows of tiles; tile `(ty, tx)` of a block is its
    /// column `(ty - r0) * tw + tx`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.th)
            .step_by(self.block_rows)
            .map(move |r0| (r0, (r0 + self.block_rows).min(self.th)))
    }

    fn len(&self, (r0, r1): (usize, usize)) -> usize {
        (r1 - r0) * self.tw
    }

    /// Padded row `p` of `plane`, split into its even and odd columns (`tw + 1` each).
    fn gather(&self, plane: &[f32], p: usize, even: &mut [f32], odd: &mut [f32]) {
        let (h, w) = (self.g.h / self.g.up, self.g.w / self.g.up);
        let row = self.rows[p];
        if row == h {
            even.fill(0.0);
            odd.fill(0.0);
            return;
        }
        let src = &plane[row * w..][..w];
        let at = |c: usize| if c < w { src[c] } else { 0.0 };
        for (t, (e, o)) in even.iter_mut().zip(odd.iter_mut()).enumerate() {
            *e = at(self.even[t]);
            *o = at(self.odd[t]);
        }
    }

    /// Adds `even`, `odd` (`tw + 1` each) into padded row `p` of `plane`, through the
    /// reflection (the adjoint of [`Self::gather`]).
    fn scatter(&self, plane: &mut [f32], p: usize, even: &[f32], odd: &[f32]) {
        let (h, w) = (self.g.h / self.g.up, self.g.w / self.g.up);
        let row = self.rows[p];
        if row == h {
            return;
        }
        let dst = &mut plane[row * w..][..w];
        for (t, (e, o)) in even.iter().zip(odd).enumerate() {
            if self.even[t] < w {
                dst[self.even[t]] += e;
            }
            if self.odd[t] < w {
                dst[self.odd[t]] += o;
            }
        }
    }

    /// `V = B^T d B` of the tiles of block `rows` of `x` (`[c_in, h, w]`) into `v`
    /// (`[c_in][16][n]`).
    fn transform_input(&self, x: &[f32], rows: (usize, usize), v: &mut [f32]) {
        let (plane_len, n, tw) = (self.g.in_plane(), self.len(rows), self.tw);
        v.par_chunks_mut(16 * n)
            .zip(x.par_chunks(plane_len))
            .for_each(|(vc, plane)| {
                // Padded rows 0..4 of a row of tiles, even and odd columns, then B^T across them.
                let mut e = vec![vec![0.0; tw + 1]; 4];
                let mut o = vec![vec![0.0; tw + 1]; 4];
                let mut se = vec![vec![0.0; tw + 1]; 4];
                let mut so = vec![vec![0.0; tw + 1]; 4];
                for ty in rows.0..rows.1 {
                    for r in 0..4 {
                        self.gather(plane, 2 * ty + r, &mut e[r], &mut o[r]);
                    }
                    for (src, dst) in [(&e, &mut se), (&o, &mut so)] {
                        zip2(&mut dst[0], &src[0], &src[2], |a, b| a - b);
                        zip2(&mut dst[1], &src[1], &src[2], |a, b| a + b);
                        zip2(&mut dst[2], &src[2], &src[1], |a, b| a - b);
                        zip2(&mut dst[3], &src[1], &src[3], |a, b| a - b);
                    }
                    // B^T along each transformed row: columns e[t], o[t], e[t+1], o[t+1].
                    let j0 = (ty - rows.0) * tw;
                    for r in 0..4 {
                        let (e0, e1, o0, o1) =
                            (&se[r][..tw], &se[r][1..], &so[r][..tw], &so[r][1..]);
                        let out = |q: usize| (r * 4 + q) * n + j0;
                        zip2(&mut vc[out(0)..][..tw], e0, e1, |a, b| a - b);
                        zip2(&mut vc[out(1)..][..tw], o0, e1, |a, b| a + b);
                        zip2(&mut vc[out(2)..][..tw], e1, o0, |a, b| a - b);
                        zip2(&mut vc[out(3)..][..tw], o0, o1, |a, b| a - b);
                    }
                }
            });
    }

    /// `y = A^T M A` of the tiles of block `rows` from `m` (`[16][c_out][n]`) into `y`
    /// (`[c_out, h, w]`), plus the bias.
    fn transform_output(
        &self,
        m: &[f32],
        rows: (usize, usize),
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) {
        let (h, w, n, tw, c_out) = (self.g.h, self.g.w, self.len(rows), self.tw, self.g.c_out);
        y.par_chunks_mut(h * w).enumerate().for_each(|(k, plane)| {
            let add = bias.map_or(0.0, |b| b[k]);
            // A^T along each row of the 4x4 product (q[r][0], q[r][1]), then across the rows.
            let mut q = vec![vec![0.0; tw]; 8];
            let mut out = vec![vec![0.0; tw]; 4];
            for ty in rows.0..rows.1 {
                let j0 = (ty - rows.0) * tw;
                let mrow = |xi: usize| &m[(xi * c_out + k) * n + j0..][..tw];
                for r in 0..4 {
                    let (a, b) = q.split_at_mut(2 * r + 1);
                    zip3(
                        &mut a[2 * r],
                        mrow(4 * r),
                        mrow(4 * r + 1),
                        mrow(4 * r + 2),
                        |x, y, z| x + y + z,
                    );
                    zip3(
                        &mut b[0],
                        mrow(4 * r + 1),
                        mrow(4 * r + 2),
                        mrow(4 * r + 3),
                        |x, y, z| x - y - z,
                    );
                }
                for c in 0..2 {
                    zip3(&mut out[c], &q[c], &q[2 + c], &q[4 + c], |x, y, z| {
                        x + y + z + add
                    });
                    zip3(
                        &mut out[2 + c],
                        &q[2 + c],
                        &q[4 + c],
                        &q[6 + c],
                        |x, y, z| x - y - z + add,
                    );
                }
                for rr in 0..2 {
                    let i = 2 * ty + rr;
                    if i >= h {
                        break;
                    }
                    let dst = &mut plane[i * w..][..w];
                    let (c0, c1) = (&out[2 * rr], &out[2 * rr + 1]);
                    if w % 2 == 0 {
                        for ((d, a), b) in dst.chunks_exact_mut(2).zip(c0).zip(c1) {
                            d[0] = *a;
                            d[1] = *b;
                        }
                    } else {
                        for (t, (a, b)) in c0.iter().zip(c1).enumerate() {
                            dst[2 * t] = *a;
                            if 2 * t + 1 < w {
                                dst[2 * t + 1] = *b;
                            }
                        }
                    }
                }
            }
        });
    }

    /// `dM = A dy A^T` of the tiles of block `rows` of `dy` (`[c_out, h, w]`) into `dm`
    /// (`[c_out][16][n]`); outputs past an odd edge have no gradient.
    fn transform_output_grad(&self, dy: &[f32], rows: (usize, usize), dm: &mut [f32]) {
        let (h, w, n, tw) = (self.g.h, self.g.w, self.len(rows), self.tw);
        dm.par_chunks_mut(16 * n)
            .zip(dy.par_chunks(h * w))
            .for_each(|(dmk, plane)| {
                // Each dy row's even and odd columns, then A along them (c[r][q]).
                let mut de = vec![vec![0.0; tw]; 2];
                let mut dd = vec![vec![0.0; tw]; 2];
                let mut c = vec![vec![0.0; tw]; 8];
                for ty in rows.0..rows.1 {
                    for r in 0..2 {
                        let i = 2 * ty + r;
                        if i < h {
                            let src = &plane[i * w..][..w];
                            for t in 0..tw {
                                de[r][t] = src[2 * t];
                                dd[r][t] = if 2 * t + 1 < w { src[2 * t + 1] } else { 0.0 };
                            }
                        } else {
                            de[r].fill(0.0);
                            dd[r].fill(0.0);
                        }
                        c[4 * r].copy_from_slice(&de[r]);
                        zip2(&mut c[4 * r + 1], &de[r], &dd[r], |a, b| a + b);
                        zip2(&mut c[4 * r + 2], &de[r], &dd[r], |a, b| a - b);
                        negate(&mut c[4 * r + 3], &dd[r]);
                    }
                    // A across the two rows: xi = r * 4 + q.
                    let j0 = (ty - rows.0) * tw;
                    for q in 0..4 {
                        let (c0, c1) = (&c[q], &c[4 + q]);
                        let out = |r: usize| (r * 4 + q) * n + j0;
                        dmk[out(0)..][..tw].copy_from_slice(c0);
                        zip2(&mut dmk[out(1)..][..tw], c0, c1, |a, b| a + b);
                        zip2(&mut dmk[out(2)..][..tw], c0, c1, |a, b| a - b);
                        negate(&mut dmk[out(3)..][..tw], c1);
                    }
                }
            });
    }

    /// `dd = B dV B^T` of the tiles of block `rows` from `dv` (`[16][c_in][n]`), added into
    /// `dx` (`[c_in, h, w]`) through the reflection.
    fn transform_input_grad(&self, dv: &[f32], rows: (usize, usize), dx: &mut [f32]) {
        let (n, tw, c_in) = (self.len(rows), self.tw, self.g.c_in);
        dx.par_chunks_mut(self.g.in_plane())
            .enumerate()
            .for_each(|(c, plane)| {
                // B along each row of dV (p[r][q]), then across the rows, added into the padded
                // rows' even and odd columns.
                let mut p = vec![vec![0.0; tw]; 16];
                let mut col = vec![vec![0.0; tw]; 4];
                let mut e = vec![0.0; tw + 1];
                let mut o = vec![0.0; tw + 1];
                for ty in rows.0..rows.1 {
                    let j0 = (ty - rows.0) * tw;
                    let row = |xi: usize| &dv[(xi * c_in + c) * n + j0..][..tw];
                    for r in 0..4 {
                        let [w0, w1, w2, w3] = [0, 1, 2, 3].map(|q| row(4 * r + q));
                        p[4 * r].copy_from_slice(w0);
                        zip3(&mut p[4 * r + 1], w1, w2, w3, |a, b, c| a - b + c);
                        zip3(&mut p[4 * r + 2], w1, w2, w0, |a, b, c| a + b - c);
                        negate(&mut p[4 * r + 3], w3);
                    }
                    for rr in 0..4 {
                        // Row rr of B dV B^T, column by column: B across rows r of p[r][q].
                        for (q, dst) in col.iter_mut().enumerate() {
                            let [u0, u1, u2, u3] = [0, 1, 2, 3].map(|r| &p[4 * r + q]);
                            match rr {
                                0 => dst.copy_from_slice(u0),
                                1 => zip3(dst, u1, u2, u3, |a, b, c| a - b + c),
                                2 => zip3(dst, u1, u2, u0, |a, b, c| a + b - c),
                                _ => negate(dst, u3),
                            }
                        }
                        // Tile t's columns are e[t], o[t], e[t + 1], o[t + 1].
                        e[..tw].copy_from_slice(&col[0]);
                        o[..tw].copy_from_slice(&col[1]);
                        (e[tw], o[tw]) = (0.0, 0.0);
                        for (d, s) in e[1..].iter_mut().zip(&col[2]) {
                            *d += s;
                        }
                        for (d, s) in o[1..].iter_mut().zip(&col[3]) {
                            *d += s;
                        }
                        self.scatter(plane, 2 * ty + rr, &e, &o);
                    }
                }
            });
    }
}

/// `U = G g G^T` of `weight` (`[c_out, c_in, 3, 3]`) as `[16][c_out][c_in]`.
fn transform_weights(weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let pairs = g.c_out * g.c_in;
    let mut u = vec![0.0; 16 * pairs];
    let tiles: Vec<[[f32; 4]; 4]> = weight
        .par_chunks_exact(9)
        .map(|f| {
            let f: [[f32; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|c| f[r * 3 + c]));
            both_ways(f, gmul)
        })
        .collect();
    u.par_chunks_mut(pairs).enumerate().for_each(|(xi, ux)| {
        for (v, t) in ux.iter_mut().zip(&tiles) {
            *v = t[xi / 4][xi % 4];
        }
    });
    u
}

/// The 16 products `dst[xi] (+)= lhs[xi] x rhs[xi]` of one block, one per thread at a time.
fn products<'a>(
    dst: &mut [f32],
    dst_len: usize,
    lhs: impl Fn(usize) -> MatRef<'a> + Sync,
    rhs: impl Fn(usize) -> MatRef<'a> + Sync,
    rows_cols: (usize, usize),
    accumulate: bool,
) {
    dst.par_chunks_mut(dst_len).enumerate().for_each(|(xi, d)| {
        let dst = MatMut {
            data: d,
            rows: rows_cols.0,
            cols: rows_cols.1,
            rs: rows_cols.1,
            cs: 1,
        };
        matmul_on_one_thread(dst, lhs(xi), rhs(xi), accumulate);
    });
}

/// The forward pass on f32 slices in PyTorch layouts (as `reflect_conv::forward`).
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, g: ConvGeometry) -> Vec<f32> {
    assert!(
        applies(&g),
        "winograd: not a 3x3 stride-1 pad-1 convolution"
    );
    let tiles = Tiles::new(g);
    let u = transform_weights(weight, &g);
    let (plane, block) = (g.h * g.w, tiles.block_rows * tiles.tw);
    let mut y = vec![0.0; g.batch * g.c_out * plane];
    let mut v = vec![0.0; g.c_in * 16 * block];
    let mut m = vec![0.0; 16 * g.c_out * block];
    for (xb, yb) in x
        .chunks_exact(g.c_in * g.in_plane())
        .zip(y.chunks_exact_mut(g.c_out * plane))
    {
        for range in tiles.blocks() {
            let n = tiles.len(range);
            let (v, m) = (&mut v[..g.c_in * 16 * n], &mut m[..16 * g.c_out * n]);
            tiles.transform_input(xb, range, v);
            let v: &[f32] = v;
            products(
                m,
                g.c_out * n,
                |xi| MatRef {
                    data: &u[xi * g.c_out * g.c_in..][..g.c_out * g.c_in],
                    rows: g.c_out,
                    cols: g.c_in,
                    rs: g.c_in,
                    cs: 1,
                },
                |xi| MatRef {
                    data: &v[xi * n..],
                    rows: g.c_in,
                    cols: n,
                    rs: 16 * n,
                    cs: 1,
                },
                (g.c_out, n),
                false,
            );
            tiles.transform_output(m, range, bias, yb);
        }
    }
    y
}

/// The input and weight gradients (each only when asked for), as `reflect_conv::backward`.
pub fn backward(
    x: Option<&[f32]>,
    weight: Option<&[f32]>,
    dy: &[f32],
    g: ConvGeometry,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert!(
        applies(&g),
        "winograd: not a 3x3 stride-1 pad-1 convolution"
    );
    let tiles = Tiles::new(g);
    let (plane, block) = (g.h * g.w, tiles.block_rows * tiles.tw);
    let u = weight.map(|w| transform_weights(w, &g));
    let in_plane = g.in_plane();
    let mut dx = u.as_ref().map(|_| vec![0.0; g.batch * g.c_in * in_plane]);
    let mut du = x.map(|_| vec![0.0; 16 * g.c_out * g.c_in]);
    let mut dm = vec![0.0; g.c_out * 16 * block];
    let mut v = vec![0.0; g.c_in * 16 * block];
    let mut dv = vec![0.0; 16 * g.c_in * block];
    for (b, dyb) in dy.chunks_exact(g.c_out * plane).enumerate() {
        for range in tiles.blocks() {
            let n = tiles.len(range);
            let dm = &mut dm[..g.c_out * 16 * n];
            tiles.transform_output_grad(dyb, range, dm);
            let dm: &[f32] = dm;
            let dm_xi = |xi: usize| MatRef {
                data: &dm[xi * n..],
                rows: g.c_out,
                cols: n,
                rs: 16 * n,
                cs: 1,
            };
            if let (Some(u), Some(dx)) = (u.as_deref(), dx.as_mut()) {
                let dv = &mut dv[..16 * g.c_in * n];
                products(
                    dv,
                    g.c_in * n,
                    |xi| MatRef {
                        data: &u[xi * g.c_out * g.c_in..][..g.c_out * g.c_in],
                        rows: g.c_in,
                        cols: g.c_out,
                        rs: 1,
                        cs: g.c_in,
                    },
                    dm_xi,
                    (g.c_in, n),
                    false,
                );
                tiles.transform_input_grad(
                    dv,
                    range,
                    &mut dx[b * g.c_in * in_plane..][..g.c_in * in_plane],
                );
            }
            if let (Some(x), Some(du)) = (x, du.as_mut()) {
                let v = &mut v[..g.c_in * 16 * n];
                let xb = &x[b * g.c_in * in_plane..][..g.c_in * in_plane];
                tiles.transform_input(xb, range, v);
                let v: &[f32] = v;
                products(
                    du,
                    g.c_out * g.c_in,
                    dm_xi,
                    |xi| MatRef {
                        data: &v[xi * n..],
                        rows: n,
                        cols: g.c_in,
                        rs: 1,
                        cs: 16 * n,
                    },
                    (g.c_out, g.c_in),
                    true,
                );
            }
        }
    }
    let dw = du.map(|du| {
        let pairs = g.c_out * g.c_in;
        let mut dw = vec![0.0; pairs * 9];
        dw.par_chunks_exact_mut(9).enumerate().for_each(|(p, f)| {
            let t: [[f32; 4]; 4] =
                std::array::from_fn(|r| std::array::from_fn(|c| du[(r * 4 + c) * pairs + p]));
            let d = both_ways(t, gt);
            for (v, d) in f.iter_mut().zip(d.iter().flatten()) {
                *v = *d;
            }
        });
        dw
    });
    (dx, dw)
}
