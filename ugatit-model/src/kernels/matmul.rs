//! A checked, safe front for the `gemm` crate's raw-pointer f32 matrix product (the crate Flex
//! multiplies with), on strided views of slices, using rayon's threads.

/// A `rows x cols` matrix inside `data`: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// The mutable counterpart of [`MatRef`].
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Whether every element of a `rows x cols` view with strides `rs`, `cs` lies in `len`.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` when `accumulate`, on all of rayon's threads.
///
/// # Panics
/// If the shapes do not chain or a view reaches outside its slice.
pub(crate) fn matmul(dst: MatMut<'_>, lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool) {
    product(dst, lhs, rhs, accumulate, gemm::Parallelism::Rayon(0));
}

/// [`matmul`] on the calling thread: for many independent products run side by side.
pub(crate) fn matmul_on_one_thread(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
) {
    product(dst, lhs, rhs, accumulate, gemm::Parallelism::None);
}

fn product(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert!(
        lhs.rows == dst.rows && rhs.cols == dst.cols && lhs.cols == rhs.rows,
        "matmul: [{}, {}] x [{}, {}] into [{}, {}]",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols,
        dst.rows,
        dst.cols
    );
    assert!(fits(dst.data.len(), dst.rows, dst.cols, dst.rs, dst.cs));
    assert!(fits(lhs.data.len(), lhs.rows, lhs.cols, lhs.rs, lhs.cs));
    assert!(fits(rhs.data.len(), rhs.rows, rhs.cols, rhs.rs, rhs.cs));
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    if lhs.cols == 0 {
        if !accumulate {
            for i in 0..dst.rows {
                for j in 0..dst.cols {
                    dst.data[i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    // Strides of in-bounds views of Rust slices fit in isize (no allocation exceeds isize::MAX).
    let s = |x: usize| x as isize;
    // SAFETY: the asserts above keep every element gemm reads or writes inside its slice; `dst`
    // is borrowed mutably, so it aliases neither `lhs` nor `rhs`; gemm computes
    // `dst = alpha * dst + beta * lhs * rhs` and reads `dst` only when `read_dst` is true.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            s(dst.cs),
            s(dst.rs),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.cs),
            s(lhs.rs),
            rhs.data.as_ptr(),
            s(rhs.cs),
            s(rhs.rs),
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}
