//! Electronic seals and seal signatures: GB/T 38540-2020 (v4) and GM/T 0031-2014 (v1).
