// A FIFO on a growable circular buffer. Unlike std::deque it allocates
// nothing while empty (libstdc++'s deque allocates about 600 bytes up front),
// which matters for idle connections: every connection and session has queues
// that are almost always empty.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace broker {

template <typename T>
class Ring {
 public:
  Ring() = default;
  Ring(Ring&& o) noexcept { swap(o); }
  Ring& operator=(Ring&& o) noexcept {
    Ring tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { clear(); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  T& front() { return slot(0); }
  const T& front() const { return slot(0); }
  T& back() { return slot(size_ - 1); }
  T& operator[](size_t i) { return slot(i); }
  const T& operator[](size_t i) const { return slot(i); }

  void push_back(T v) {
    if (size_ == cap_) grow();
    new (&raw(size_)) T(std::move(v));
    ++size_;
  }
  void pop_front() {
    slot(0).~T();
    head_ = (head_ + 1) & (cap_ - 1);
    if (--size_ == 0) head_ = 0;
  }
  void clear() {
    while (!empty()) pop_front();
  }
  // Frees the storage too (after a burst, an idle queue holds no memory).
  void shrink_if_empty() {
    if (size_ == 0 && cap_ > 0) {
      buf_.reset();
      cap_ = 0;
      head_ = 0;
    }
  }

 private:
  struct alignas(T) Cell {
    unsigned char bytes[sizeof(T)];
  };
  T& raw(size_t i) { return *std::launder(reinterpret_cast<T*>(&buf_[(head_ + i) & (cap_ - 1)])); }
  T& slot(size_t i) { return raw(i); }
  const T& slot(size_t i) const {
    return *std::launder(reinterpret_cast<const T*>(&buf_[(head_ + i) & (cap_ - 1)]));
  }
  void grow() {
    size_t cap = cap_ ? cap_ * 2 : 4;
    std::unique_ptr<Cell[]> nb(new Cell[cap]);
    for (size_t i = 0; i < size_; ++i) {
      T& from = slot(i);
      new (&nb[i]) T(std::move(from));
      from.~T();
    }
    buf_ = std::move(nb);
    cap_ = cap;
    head_ = 0;
  }
  void swap(Ring& o) noexcept {
    std::swap(buf_, o.buf_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
  }

  std::unique_ptr<Cell[]> buf_;
  size_t cap_ = 0;  // a power of two, or 0
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace broker
