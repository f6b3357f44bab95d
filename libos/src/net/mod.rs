//! Networking: the [`NetDevice`] trait through which the LibOS reaches a
//! network interface card (implemented by the kernel's virtio-net driver and
//! by mocks in host tests).

pub mod device;

pub use device::NetDevice;
