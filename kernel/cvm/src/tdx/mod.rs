//! Intel TDX guest protocols (TDX module ABI and the Guest-Host
//! Communication Interface, GHCI).
