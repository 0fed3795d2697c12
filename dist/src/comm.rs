//! The transport under a [`World`](crate::World): MPI through rsmpi with the
//! `mpi` feature, or a single process without it (every collective an
//! identity). Everything MPI-specific in the crate is in this file.

/// The element types that collectives move (sealed).
pub trait Element: Copy + Default + Send + Sync + 'static + sealed::Sealed {
    /// Which one, for the transport.
    #[doc(hidden)]
    const KIND: Kind;
}

/// The element kinds (an implementation detail of [`Element`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `u8`.
    U8,
    /// `u64`.
    U64,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for u8 {}
    impl Sealed for u64 {}
}

impl Element for f32 {
    const KIND: Kind = Kind::F32;
}
impl Element for f64 {
    const KIND: Kind = Kind::F64;
}
impl Element for u8 {
    const KIND: Kind = Kind::U8;
}
impl Element for u64 {
    const KIND: Kind = Kind::U64;
}

/// How an all-reduce combines the ranks' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Elementwise sum.
    Sum,
    /// Elementwise sum divided by the number of ranks (integer division for
    /// integer elements).
    Mean,
    /// Elementwise maximum.
    Max,
    /// Elementwise minimum.
    Min,
}

#[cfg(feature = "mpi")]
pub(crate) use self::mpi_comm::{init, Comm, Universe};
#[cfg(not(feature = "mpi"))]
pub(crate) use self::single::{init, Comm, Universe};

/// Reinterprets `buf` as `[U]` when `E` is `U` (checked through [`Element::KIND`]).
#[cfg(feature = "mpi")]
fn cast_mut<E: Element, U: Element>(buf: &mut [E]) -> &mut [U] {
    assert_eq!(E::KIND, U::KIND);
    // SAFETY: equal kinds mean equal types (the trait is sealed, one type per kind).
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<U>(), buf.len()) }
}

#[cfg(feature = "mpi")]
fn cast<E: Element, U: Element>(buf: &[E]) -> &[U] {
    assert_eq!(E::KIND, U::KIND);
    // SAFETY: as in `cast_mut`.
    unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<U>(), buf.len()) }
}

#[cfg(feature = "mpi")]
mod mpi_comm {
    use mpi::collective::SystemOperation;
    use mpi::environment::Threading;
    use mpi::traits::{Communicator, CommunicatorCollectives, Equivalence, Root};

    use super::{cast, cast_mut, Element, Kind, ReduceOp};

    /// Keeps MPI initialised; finalises it when dropped.
    pub(crate) struct Universe(#[allow(dead_code)] mpi::environment::Universe);

    /// A communicator. MPI handles may be used from any thread once
    /// `MPI_THREAD_MULTIPLE` is granted; with a lower level the crate makes
    /// every call from one thread at a time (see `World::threads_ok`).
    pub(crate) struct Comm(mpi::topology::SimpleCommunicator);

    // SAFETY: see the type's comment; a communicator handle is a plain pointer
    // that MPI itself synchronises under MPI_THREAD_MULTIPLE.
    unsafe impl Send for Comm {}
    unsafe impl Sync for Comm {}

    /// MPI with the highest thread support offered: `(universe, world
    /// communicator, whether MPI_THREAD_MULTIPLE was granted)`.
    pub(crate) fn init() -> Result<(Universe, Comm, bool), String> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Multiple).ok_or(
            "MPI is initialised already, or was finalised (a world is made once per process)",
        )?;
        let world = universe.world();
        Ok((
            Universe(universe),
            Comm(world),
            level >= Threading::Multiple,
        ))
    }

    fn sys(op: ReduceOp) -> SystemOperation {
        match op {
            ReduceOp::Sum | ReduceOp::Mean => SystemOperation::sum(),
            ReduceOp::Max => SystemOperation::max(),
            ReduceOp::Min => SystemOperation::min(),
        }
    }

    fn reduce<U: Element + Equivalence>(
        c: &mpi::topology::SimpleCommunicator,
        buf: &mut [U],
        op: ReduceOp,
    ) {
        let send = buf.to_vec();
        c.all_reduce_into(&send[..], buf, sys(op));
    }

    fn gather<U: Element + Equivalence>(
        c: &mpi::topology::SimpleCommunicator,
        send: &[U],
        recv: &mut [U],
    ) {
        c.all_gather_into(send, recv);
    }

    impl Comm {
        pub(crate) fn rank(&self) -> usize {
            self.0.rank() as usize
        }

        pub(crate) fn size(&self) -> usize {
            self.0.size() as usize
        }

        pub(crate) fn barrier(&self) {
            self.0.barrier();
        }

        /// Sums (or max/min) in place; `Mean` is left to the caller.
        pub(crate) fn all_reduce<E: Element>(&self, buf: &mut [E], op: ReduceOp) {
            if buf.is_empty() {
                return;
            }
            match E::KIND {
                Kind::F32 => reduce::<f32>(&self.0, cast_mut(buf), op),
                Kind::F64 => reduce::<f64>(&self.0, cast_mut(buf), op),
                Kind::U8 => reduce::<u8>(&self.0, cast_mut(buf), op),
                Kind::U64 => reduce::<u64>(&self.0, cast_mut(buf), op),
            }
        }

        pub(crate) fn broadcast<E: Element>(&self, buf: &mut [E], root: usize) {
            if buf.is_empty() {
                return;
            }
            let root = self.0.process_at_rank(root as i32);
            match E::KIND {
                Kind::F32 => root.broadcast_into(cast_mut::<E, f32>(buf)),
                Kind::F64 => root.broadcast_into(cast_mut::<E, f64>(buf)),
                Kind::U8 => root.broadcast_into(cast_mut::<E, u8>(buf)),
                Kind::U64 => root.broadcast_into(cast_mut::<E, u64>(buf)),
            }
        }

        /// `recv` (size × `send.len()`) gets every rank's `send`, in rank order.
        pub(crate) fn all_gather<E: Element>(&self, send: &[E], recv: &mut [E]) {
            if send.is_empty() {
                return; // an empty slice's pointer is no valid MPI buffer
            }
            match E::KIND {
                Kind::F32 => gather::<f32>(&self.0, cast(send), cast_mut(recv)),
                Kind::F64 => gather::<f64>(&self.0, cast(send), cast_mut(recv)),
                Kind::U8 => gather::<u8>(&self.0, cast(send), cast_mut(recv)),
                Kind::U64 => gather::<u64>(&self.0, cast(send), cast_mut(recv)),
            }
        }

        /// A communicator of its own over the same ranks (collective: every
        /// rank must call it at the same point).
        pub(crate) fn duplicate(&self) -> Comm {
            Comm(self.0.duplicate())
        }

        /// Ends every process of the job (`MPI_Abort`).
        pub(crate) fn abort(&self, code: i32) -> ! {
            self.0.abort(code)
        }
    }

    /// `MPI_Abort` on the world communicator, for the panic hook (which has
    /// no world at hand).
    pub(crate) fn abort_world(code: i32) -> ! {
        mpi::topology::SimpleCommunicator::world().abort(code)
    }
}

#[cfg(feature = "mpi")]
pub(crate) use self::mpi_comm::abort_world;

#[cfg(not(feature = "mpi"))]
mod single {
    use super::{Element, ReduceOp};

    /// Nothing to keep alive without MPI.
    pub(crate) struct Universe;

    /// The single process's "communicator".
    pub(crate) struct Comm;

    pub(crate) fn init() -> Result<(Universe, Comm, bool), String> {
        Ok((Universe, Comm, true))
    }

    impl Comm {
        pub(crate) fn rank(&self) -> usize {
            0
        }

        pub(crate) fn size(&self) -> usize {
            1
        }

        pub(crate) fn barrier(&self) {}

        pub(crate) fn all_reduce<E: Element>(&self, _buf: &mut [E], _op: ReduceOp) {}

        pub(crate) fn broadcast<E: Element>(&self, _buf: &mut [E], _root: usize) {}

        pub(crate) fn all_gather<E: Element>(&self, send: &[E], recv: &mut [E]) {
            recv.copy_from_slice(send);
        }

        pub(crate) fn duplicate(&self) -> Comm {
            Comm
        }

        pub(crate) fn abort(&self, code: i32) -> ! {
            std::process::exit(code)
        }
    }
}
